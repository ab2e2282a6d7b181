package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkRun drives url with wrk (when -wrk is given and wrk is installed): a
// second, C load generator, which takes less of the shared CPU than the Go
// one and so leaves more to the servers.
func wrkRun(ctx context.Context, url, token string, conns int, d time.Duration) (*figures, error) {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	cmd := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--latency",
		"-H", "X-aws-ec2-metadata-token: "+token, url)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("wrk: %w", err)
	}
	f := &figures{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 2 && fields[0] == "Requests/sec:":
			f.RPS, _ = strconv.ParseFloat(fields[1], 64)
		case len(fields) == 2 && fields[0] == "50%":
			f.P50us = wrkMicros(fields[1])
		case len(fields) == 2 && fields[0] == "99%":
			f.P99us = wrkMicros(fields[1])
		case len(fields) >= 4 && fields[1] == "requests" && fields[2] == "in":
			n, _ := strconv.ParseUint(fields[0], 10, 64)
			f.Requests = n
		case len(fields) >= 2 && fields[0] == "Non-2xx":
			n, _ := strconv.ParseUint(fields[len(fields)-1], 10, 64)
			f.Errors += n
		}
	}
	if f.RPS == 0 {
		return nil, fmt.Errorf("wrk: no Requests/sec in its output:\n%s", out)
	}
	return f, nil
}

// wrkMicros parses wrk's latencies: 312.00us, 1.20ms, 1.01s.
func wrkMicros(s string) float64 {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"us", 1}, {"ms", 1e3}, {"s", 1e6}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n * u.scale
		}
	}
	return 0
}

// mergeFigures averages per-round wrk figures, weighting by requests.
func mergeFigures(all []*figures) figures {
	var out figures
	var w float64
	for _, f := range all {
		n := float64(f.Requests)
		out.RPS += f.RPS / float64(len(all))
		out.P50us += f.P50us * n
		out.P99us += f.P99us * n
		out.Requests += f.Requests
		out.Errors += f.Errors
		w += n
	}
	if w > 0 {
		out.P50us /= w
		out.P99us /= w
	}
	return out
}
