package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"strconv"
	"sync"
	"time"
)

// hist is a log-linear latency histogram: 64 sub-buckets per power of two
// (under 1.6% relative error), in nanoseconds. Each worker owns one; they
// are merged after the run, so recording takes no lock.
type hist struct {
	counts [64 * 64]uint64
	n      uint64
	max    int64
}

const subBits = 6

func bucketOf(v int64) int {
	if v < 1<<subBits {
		if v < 0 {
			v = 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1
	return (e+1)<<subBits + int(v>>e) - 1<<subBits
}

// lowOf is the smallest value of bucket i.
func lowOf(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	e := i>>subBits - 1
	return int64(i&(1<<subBits-1)+1<<subBits) << e
}

func (h *hist) record(d time.Duration) {
	v := int64(d)
	i := bucketOf(v)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0..1), as the middle of its bucket.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			lo, hi := lowOf(i), lowOf(i+1)
			return time.Duration(min((lo+hi)/2, h.max))
		}
	}
	return time.Duration(h.max)
}

// result is one target's figures for one kind of load.
type result struct {
	Requests uint64        `json:"requests"`
	Errors   uint64        `json:"errors"`
	Elapsed  time.Duration `json:"-"`
	// ServerCPU is the CPU time (user and system) the server process used
	// during the load, when measured (serverCPU): per request, it is the
	// figure least disturbed by other work on a shared machine.
	ServerCPU time.Duration `json:"-"`
	hist      hist
}

func (r *result) merge(o *result) {
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	r.ServerCPU += o.ServerCPU
	r.hist.merge(&o.hist)
}

func (r *result) rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// conn is a minimal HTTP/1.1 client connection: requests are pre-built
// bytes, responses are parsed just enough to find their end. It costs far
// less CPU than net/http's client, which matters when the load generator
// shares two cores with the server it measures.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 32<<10)}, nil
}

// close ends the connection with a reset (SO_LINGER 0), so that tens of
// thousands of fresh connections leave no TIME_WAIT sockets behind to
// exhaust the ephemeral ports.
func (c *conn) close() {
	if tc, ok := c.c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.c.Close()
}

var errClosed = errors.New("server closed the connection")

// do sends req and reads one response. It returns the status, the body when
// keepBody is set, and whether the server keeps the connection open.
func (c *conn) do(req []byte, keepBody bool) (status int, body []byte, keep bool, err error) {
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err = c.c.Write(req); err != nil {
		return 0, nil, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errClosed
		}
		return 0, nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	length, keep := -1, true
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		if len(line) <= 2 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, nil, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
			keep = false
		}
	}
	if length < 0 {
		return 0, nil, false, errors.New("response without Content-Length")
	}
	if keepBody {
		body = make([]byte, length)
		_, err = io.ReadFull(c.br, body)
	} else {
		_, err = c.br.Discard(length)
	}
	return status, body, keep, err
}

// keepAlive drives addr with n keep-alive connections in a closed loop (each
// sends its next request when the previous response is in) for d, and
// records every request's latency. A connection that fails is redialled.
func keepAlive(ctx context.Context, addr string, req []byte, n int, d time.Duration) *result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	results := make([]result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			r := &results[i]
			var c *conn
			for ctx.Err() == nil {
				if c == nil {
					var err error
					if c, err = dial(addr); err != nil {
						r.Errors++
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				t0 := time.Now()
				status, _, keep, err := c.do(req, false)
				if err != nil || status != 200 {
					r.Errors++
				} else {
					r.hist.record(time.Since(t0))
					r.Requests++
				}
				if err != nil || !keep {
					c.close()
					c = nil
				}
			}
			if c != nil {
				c.close()
			}
		})
	}
	wg.Wait()
	total := &result{Elapsed: time.Since(start)}
	for i := range results {
		results[i].Elapsed = 0
		total.merge(&results[i])
	}
	return total
}

// coldSequence is what botocore does on every credential refresh, each time
// on a new connection: PUT a token, GET the role list, GET the role's
// credentials, with the token on both GETs.
func coldSequence(ctx context.Context, addr, host string, n int, d time.Duration) *result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	putReq := []byte("PUT /latest/api/token HTTP/1.1\r\nHost: " + host + "\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n")
	results := make([]result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			r := &results[i]
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := oneColdSequence(addr, host, putReq); err != nil {
					r.Errors++
					continue
				}
				r.hist.record(time.Since(t0))
				r.Requests++
			}
		})
	}
	wg.Wait()
	total := &result{Elapsed: time.Since(start)}
	for i := range results {
		total.merge(&results[i])
	}
	return total
}

func oneColdSequence(addr, host string, putReq []byte) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.close()
	status, token, _, err := c.do(putReq, true)
	if err != nil || status != 200 {
		return fmt.Errorf("token: %d %v", status, err)
	}
	prefix := "GET /latest/meta-data/iam/security-credentials/"
	hdr := " HTTP/1.1\r\nHost: " + host + "\r\nX-aws-ec2-metadata-token: " + string(token) + "\r\n\r\n"
	status, role, _, err := c.do([]byte(prefix+hdr), true)
	if err != nil || status != 200 {
		return fmt.Errorf("role list: %d %v", status, err)
	}
	status, _, _, err = c.do([]byte(prefix+string(role)+hdr), false)
	if err != nil || status != 200 {
		return fmt.Errorf("credentials: %d %v", status, err)
	}
	return nil
}
