// Package audit writes the optional credentials audit log: one JSON line
// per credential vend (like the ECS agent's credentials audit log), for
// operators who must answer "who got which role, when". Records never hold
// a secret: the access key id appears only as its last four characters.
// The file is reopened on Reopen (SIGHUP), so logrotate can move it away.
package audit

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Record is one credential vend, served or refused.
type Record struct {
	Time time.Time
	// Endpoint is the metrics endpoint label (imds_credentials, ecs).
	Endpoint string
	// Client is the matched client ("" when none matched).
	Client string
	// Addr is the caller's IP address; UID its uid when it was looked up.
	Addr    string
	UID     int64 // -1 when unknown
	Role    string
	RoleARN string
	// AssumedRoleARN carries the session name.
	AssumedRoleARN string
	KeyIDLast4     string
	Expiration     time.Time
	// Status is the HTTP status answered; Result "success" or the error code.
	Status int
	Result string
}

// Log is an open audit file. It is safe for concurrent use; writes go to a
// buffer flushed every FlushEvery and on Close, so the request path pays an
// append to memory, not a write system call.
type Log struct {
	path string

	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	buf []byte

	stop chan struct{}
	done chan struct{}
}

// FlushEvery bounds how long a record stays in memory.
const FlushEvery = time.Second

// Open opens (creating, appending to) the audit file at path.
func Open(path string) (*Log, error) {
	l := &Log{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.open(); err != nil {
		return nil, err
	}
	go l.flusher()
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	l.f = f
	l.w = bufio.NewWriterSize(f, 64<<10)
	return nil
}

func (l *Log) flusher() {
	defer close(l.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.w.Flush()
			l.mu.Unlock()
		}
	}
}

// Reopen flushes and reopens the file at its path (after logrotate moved it).
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
	old := l.f
	if err := l.open(); err != nil {
		// Keep writing to the old file rather than losing records.
		l.f = old
		l.w = bufio.NewWriterSize(old, 64<<10)
		return err
	}
	return old.Close()
}

// Close flushes and closes the file.
func (l *Log) Close() error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		l.f.Close()
		return err
	}
	return l.f.Close()
}

// Write appends one record.
func (l *Log) Write(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	b = append(b, `{"time":`...)
	b = appendString(b, r.Time.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"endpoint":`...)
	b = appendString(b, r.Endpoint)
	b = append(b, `,"client":`...)
	b = appendString(b, r.Client)
	b = append(b, `,"caller_addr":`...)
	b = appendString(b, r.Addr)
	if r.UID >= 0 {
		b = append(b, `,"caller_uid":`...)
		b = strconv.AppendInt(b, r.UID, 10)
	}
	b = append(b, `,"role":`...)
	b = appendString(b, r.Role)
	if r.RoleARN != "" {
		b = append(b, `,"role_arn":`...)
		b = appendString(b, r.RoleARN)
	}
	if r.AssumedRoleARN != "" {
		b = append(b, `,"assumed_role_arn":`...)
		b = appendString(b, r.AssumedRoleARN)
	}
	if r.KeyIDLast4 != "" {
		b = append(b, `,"key_id_last4":`...)
		b = appendString(b, r.KeyIDLast4)
		b = append(b, `,"expiration":`...)
		b = appendString(b, r.Expiration.UTC().Format(time.RFC3339))
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"result":`...)
	b = appendString(b, r.Result)
	b = append(b, "}\n"...)
	l.buf = b
	l.w.Write(b)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
