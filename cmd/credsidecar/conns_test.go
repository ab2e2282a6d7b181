//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rssMiB is this process's resident set (VmRSS).
func rssMiB(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// TestConnectionExhaustion is the attack of the hostile-users issue: local
// users matching no client hold thousands of idle keep-alive connections,
// more than the process has descriptors for (its limit is lowered to 4096
// here, as a unit's LimitNOFILE would). Trusted callers must still be
// answered within a second, the admin listener must keep answering, and
// memory must stay bounded.
func TestConnectionExhaustion(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root: this test must not skip there")
		}
		t.Skip("needs root to run the attackers as other uids")
	}
	// Debian's python3 (.ci/run installs it with python3-boto3): a pyenv
	// shim under /root is not for other uids.
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatal("needs /usr/bin/python3 (installed with python3-boto3 by .ci/run)")
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 4096
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })

	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(serveYAML("eu-west-1", false)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startServe(t, path)
	host, port, _ := strings.Cut(strings.TrimPrefix(r.base, "http://"), ":")
	// Passed with -c: the attackers' uids need not read the checkout.
	script, err := os.ReadFile("testdata/hold_conns.py")
	if err != nil {
		t.Fatal(err)
	}

	// Four unprivileged users, 1500 connections each, from four loopback
	// addresses: 6000 connections against 4096 descriptors.
	const perUser = 1500
	held := 0
	for i, uid := range []uint32{4343, 4344, 4345, 4346} {
		cmd := exec.Command(py, "-c", string(script), host, port, strconv.Itoa(perUser), fmt.Sprintf("127.0.0.%d", 2+i), fmt.Sprintf("127.0.1.%d", 2+i))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("attacker uid %d: %v", uid, err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			t.Fatalf("attacker uid %d: %v", uid, err)
		}
		var n, failed int
		fmt.Sscanf(line, "ready %d %d", &n, &failed)
		held += n
	}
	t.Logf("attackers opened %d connections", held)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var worst time.Duration
	for i := range 20 {
		req, _ := http.NewRequest(http.MethodGet, r.base+"/creds", nil)
		req.Header.Set("Authorization", "loader-token")
		start := time.Now()
		resp, err := client.Do(req)
		d := time.Since(start)
		if err != nil {
			t.Fatalf("trusted request %d during the attack: %v (after %s)", i, err, d)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("trusted request %d: %d", i, resp.StatusCode)
		}
		worst = max(worst, d)
	}
	resp, err := client.Get(r.admin + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz during the attack: %v", err)
	}
	resp.Body.Close()
	fds, _ := os.ReadDir("/proc/self/fd")
	rss := rssMiB(t)
	t.Logf("during the attack: slowest of 20 trusted requests %s; /healthz answered; %d descriptors open; VmRSS %.1f MiB (the test binary included)", worst, len(fds), rss)
	// Bounds with room for a noisy machine: the goal is 1 s and 100 MiB
	// for the sidecar alone. Under the race detector (go test -race, as
	// the README's test command runs) every step is slower and memory is
	// multiplied, so only the latency is checked there, more loosely;
	// .ci/run also runs this test without it.
	bound := time.Second
	if raceEnabled {
		bound = 5 * time.Second
	}
	if worst > bound {
		t.Errorf("a trusted request took %s during the attack (bound %s)", worst, bound)
	}
	if !raceEnabled && rss > 120 {
		t.Errorf("VmRSS %.1f MiB during the attack (the test binary included)", rss)
	}
}
