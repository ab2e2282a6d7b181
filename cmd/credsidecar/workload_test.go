package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCheckConfigDockerDown: a container match without a reachable Docker
// API is a warning, not an error (serve still starts and fails closed).
func TestCheckConfigDockerDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	path := writeConfig(t, `sts: {mode: local}
roles: [{name: web}]
clients: [{name: w, match: {container: {labels: {credsidecar.client: w}}}, roles: [web]}]
docker: {host: unix://`+sock+`}
`)
	var out bytes.Buffer
	if err := checkConfig(path, &out); err != nil {
		t.Fatalf("check-config failed: %v", err)
	}
	if !strings.Contains(out.String(), "warning: clients match on container, but the Docker API at unix://"+sock+" does not answer") {
		t.Fatalf("no warning about the Docker API:\n%s", out.String())
	}
}

// TestExplainPID: explain --pid attests a real process in a cgroup named
// like a unit, as serve would, and names the failing condition for another.
func TestExplainPID(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to place a process in a cgroup (CI must run as root)")
		}
		t.Skip("needs root to place a process in a cgroup (runs in CI)")
	}
	mnt := "/sys/fs/cgroup/systemd"
	if _, err := os.Stat(mnt + "/cgroup.procs"); err != nil {
		mnt = "/sys/fs/cgroup"
	}
	cg := filepath.Join(mnt, "system.slice", "csci-explain.service")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleep.Process.Kill()
		sleep.Wait()
		os.Remove(cg)
	})
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `sts: {mode: local}
roles: [{name: billing}]
clients: [{name: billing, match: {systemd_unit: csci-explain.service, exe: /usr/bin/sleep}, roles: [billing]}]
`)
	var out, errOut bytes.Buffer
	if err := runExplain([]string{"--config", path, "--pid", strconv.Itoa(sleep.Process.Pid)}, &out, &errOut); err != nil {
		t.Fatalf("explain: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "billing (line 3): matches") || !strings.Contains(errOut.String(), `unit "csci-explain.service"`) {
		t.Fatalf("explain --pid of the unit's process:\n%s%s", out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	err := runExplain([]string{"--config", path, "--pid", strconv.Itoa(os.Getpid())}, &out, &errOut)
	if err == nil || !strings.Contains(out.String(), "no: systemd_unit") {
		t.Fatalf("explain --pid of another process: %v\n%s", err, out.String())
	}
}
