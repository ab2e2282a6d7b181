package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/credsidecar/credsidecar/internal/httpserver"
)

// pprofOverlay is added to package main of the sidecar, through
// `go build -overlay`, only when -cpuprofile is given: a pprof listener on
// a loopback port whose address is written to a file. The product's own
// listeners never use http.DefaultServeMux, so nothing else changes.
const pprofOverlay = `package main

import (
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	f := os.Getenv("CREDSIDECAR_BENCH_PPROF_FILE")
	if f == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(f, []byte(l.Addr().String()), 0o600); err != nil {
		panic(err)
	}
	go http.Serve(l, nil)
}
`

// buildSidecar builds ./cmd/credsidecar of the module at root into dir.
func buildSidecar(ctx context.Context, root, dir string, withPprof bool) (string, error) {
	bin := filepath.Join(dir, "credsidecar")
	args := []string{"build", "-o", bin}
	if withPprof {
		src := filepath.Join(dir, "zz_bench_pprof.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o600); err != nil {
			return "", err
		}
		ov, _ := json.Marshal(map[string]map[string]string{"Replace": {
			filepath.Join(root, "cmd", "credsidecar", "zz_bench_pprof.go"): src,
		}})
		ovFile := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(ovFile, ov, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ovFile)
	}
	args = append(args, "./cmd/credsidecar")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/credsidecar: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the benchmark from inside the credsidecar module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

// process is a started server process.
type process struct {
	cmd   *exec.Cmd
	addr  string // credential (or bare) listener
	admin string // sidecar only
	pprof string // sidecar only, with -cpuprofile
	done  chan struct{}
	// ready receives the sidecar's "credsidecar ready" line (listeners
	// serving, warm-up ended), once: when it was read, and the start-up
	// time the sidecar measured itself.
	ready chan readyLine
	// started is when the process was started.
	started time.Time
}

// readyLine is the sidecar's readiness log line.
type readyLine struct {
	at        time.Time
	startupMs float64
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks for a graceful shutdown and waits, killing after a bound.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// sidecarConfig is a local-mode config on ephemeral ports: one role, and
// either one client trusted by source address (the throughput runs) or
// sessions clients each with its own bearer token (the memory run).
func sidecarConfig(sessions int) string {
	var b strings.Builder
	b.WriteString(`listen: ["127.0.0.1:0"]
admin_listen: "127.0.0.1:0"
region: us-east-1
imds: { tokens: required }
cache: { max_entries: ` + strconv.Itoa(max(10000, sessions)) + ` }
sts:
  mode: local
  max_qps: 100000
  local:
    listen: "127.0.0.1:0"
    account_id: "000000000000"
    caller: credsidecar
roles:
  - name: app
    arn: arn:aws:iam::000000000000:role/app
    duration: 1h
    session_name: "bench-{{.Client}}"
clients:
`)
	if sessions == 0 {
		b.WriteString("  - name: bench\n    match: { source_cidrs: [\"127.0.0.0/8\"] }\n    roles: [app]\n")
	}
	for i := range sessions {
		fmt.Fprintf(&b, "  - name: c%05d\n    match: { token: %s }\n    roles: [app]\n", i, sessionToken(i))
	}
	return b.String()
}

func sessionToken(i int) string { return fmt.Sprintf("bench-token-%05d", i) }

// startSidecar runs `bin serve` on cfg and waits for its "serving" log
// line, which names the ports it bound.
func startSidecar(ctx context.Context, bin, dir, name, cfg string, pprof bool) (*process, error) {
	cfgFile := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	// Info level, the product's default: the "serving" line is needed, and
	// nothing is logged per request anyway.
	cmd := exec.Command(bin, "serve", "--config", cfgFile)
	cmd.Env = os.Environ()
	pprofFile := filepath.Join(dir, name+".pprof-addr")
	if pprof {
		cmd.Env = append(cmd.Env, "CREDSIDECAR_BENCH_PPROF_FILE="+pprofFile)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = logFile
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, started: started, done: make(chan struct{}), ready: make(chan readyLine, 1)}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found, sawReady := false, false
		for sc.Scan() {
			line := sc.Bytes()
			logFile.Write(append(line, '\n'))
			if found && sawReady {
				continue
			}
			var m struct {
				Msg       string   `json:"msg"`
				Listen    []string `json:"listen"`
				Admin     string   `json:"admin_listen"`
				StartupMs float64  `json:"startup_ms"`
			}
			if json.Unmarshal(line, &m) != nil {
				continue
			}
			if m.Msg == "credsidecar ready" && !sawReady {
				sawReady = true
				p.ready <- readyLine{at: time.Now(), startupMs: m.StartupMs}
			}
			if !found && m.Msg == "credsidecar serving" && len(m.Listen) > 0 {
				found = true
				p.addr, p.admin = m.Listen[0], m.Admin
				ready <- nil
			}
		}
		if !found {
			ready <- fmt.Errorf("sidecar exited before serving; see %s", logFile.Name())
		}
		// Wait only after the last read of the pipe (os/exec's rule).
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, err
		}
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, errors.New("sidecar did not start within 60s")
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	if pprof {
		b, err := os.ReadFile(pprofFile)
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("pprof listener: %w", err)
		}
		p.pprof = string(b)
	}
	return p, nil
}

// startBare re-runs this program as the bare server (see serveBare), so that
// both servers are separate processes with the same runtime settings.
func startBare(ctx context.Context, dir string, body []byte, token string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bodyFile := filepath.Join(dir, "bare-body.json")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-bare-server", bodyFile, "-bare-token-len", strconv.Itoa(len(token)))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() {
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(p.done)
	}()
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("bare server: %w", err)
	}
	// "ADDR PPROF-ADDR": the bare server's own pprof listener comes second.
	p.addr, p.pprof, _ = strings.Cut(strings.TrimSpace(line), " ")
	return p, nil
}

// serveBare is the bare net/http server: no router, no auth, no metrics.
// It answers the token PUT, the role list and the credentials GET with
// fixed bodies of the sidecar's sizes, with the sidecar's headers and its
// server timeouts, so the difference is the sidecar's own work.
func serveBare(bodyFile string, tokenLen int) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	token := []byte(strings.Repeat("t", tokenLen))
	role := []byte("app")
	textPlain := []string{"text/plain"}
	bodyLen := []string{strconv.Itoa(len(body))}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Content-Type"] = textPlain
		switch {
		case r.Method == http.MethodPut:
			hdr["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] = r.Header["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"]
			hdr["Content-Length"] = []string{strconv.Itoa(len(token))}
			w.Write(token)
		case strings.HasSuffix(r.URL.Path, "/"):
			hdr["Content-Length"] = []string{strconv.Itoa(len(role))}
			w.Write(role)
		default:
			hdr["Content-Length"] = bodyLen
			w.Write(body)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// A pprof listener of its own (never on the measured port), so that
	// -cpuprofile profiles the bare server under the same load too.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pm := http.NewServeMux()
	pm.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go http.Serve(pl, pm)
	fmt.Println(l.Addr().String() + " " + pl.Addr().String())
	// The sidecar's own server constructor: the baseline differs from the
	// sidecar only in its handler.
	srv := httpserver.New(httpserver.Options{Handler: h})
	go func() {
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		<-ch
		srv.Close()
	}()
	return httpserver.Serve(srv, l)
}

// rssKB is VmRSS of pid, from /proc (0 where there is no /proc).
func rssKB(pid int) int { return statusKB(pid, "VmRSS:") }

// peakRSSKB is pid's highest resident set size so far (VmHWM), in KiB.
func peakRSSKB(pid int) int { return statusKB(pid, "VmHWM:") }

// statusKB reads one kB field of /proc/PID/status (0 where unknown).
func statusKB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// cpuTime is the user + system CPU time of pid so far, from /proc (0 where
// there is no /proc).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of proc(5), utime and stime, in clock ticks
	// (USER_HZ, 100 on every Linux this runs on).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100)
}

// serverCPU runs load and records the CPU time pid used meanwhile.
func serverCPU(pid int, load func() *result) *result {
	before := cpuTime(pid)
	r := load()
	r.ServerCPU = cpuTime(pid) - before
	return r
}

// sampleRSS records the peak RSS of pid until stop is closed.
func sampleRSS(pid int, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		peak := 0
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, rssKB(pid))
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// imdsToken gets an IMDSv2 token from the sidecar with net/http.
func imdsToken(addr string) (string, error) {
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
	b, err := fetch(req)
	return string(b), err
}

func fetch(req *http.Request) ([]byte, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, b)
	}
	return b, nil
}

// metricValue reads one unlabelled sample from the sidecar's /metrics.
func metricValue(admin, name string) (float64, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
	b, err := fetch(req)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}
