//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The topology, all link-local. The sidecar namespace holds the well-known
// addresses on its loopback and one veth per app namespace; each app
// namespace routes 169.254.169.254 and 169.254.170.2 to its veth peer, as a
// host routes them to the metadata service.
//
//	app-imds 169.254.100.10 ── 169.254.100.1 ┐
//	app-ecs  169.254.101.10 ── 169.254.101.1 ├ sidecar: 169.254.169.254:80, 169.254.170.2:80
//	stranger 169.254.102.10 ── 169.254.102.1 ┘
const sidecarConfig = `
listen: ["169.254.169.254:80", "169.254.170.2:80"]
admin_listen: "127.0.0.1:8170"
region: us-east-1
sts:
  mode: local
  local:
    listen: "169.254.170.2:8171"
    account_id: "000000000000"
roles:
  - name: app
    arn: arn:aws:iam::000000000000:role/app
    duration: 1h
    session_name: "e2e-{{.Client}}"
  - name: reports
    arn: arn:aws:iam::000000000000:role/reports
    duration: 30m
    session_name: "e2e-{{.Client}}"
clients:
  - name: ns-imds
    match: { source_cidrs: ["169.254.100.10/32"] }
    roles: [app]
  - name: ns-ecs
    match: { source_cidrs: ["169.254.101.10/32"] }
    roles: [reports]
`

// nsPrefix names this process's namespaces; the pid lets a later run remove
// what a killed run left behind.
const nsPrefix = "csce2e-"

// TestNetnsDefaultChain runs the sidecar bound to 169.254.169.254:80 and
// 169.254.170.2:80 in a namespace of its own, and an unmodified
// aws-sdk-go-v2 program (examples/compose/app) in other namespaces with the
// SDK's default endpoints: one finds IMDS, one the ECS endpoint through
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, each is trusted by its source
// address for a different role, and a third namespace is refused.
func TestNetnsDefaultChain(t *testing.T) {
	requireHost(t)
	sweepStale(t)
	bin := buildBinaries(t)

	base := fmt.Sprintf("%s%d-", nsPrefix, os.Getpid())
	side := newNetns(t, base+"side")
	apps := []struct{ ns, net string }{
		{newNetns(t, base+"imds"), "169.254.100"},
		{newNetns(t, base+"ecs"), "169.254.101"},
		{newNetns(t, base+"stranger"), "169.254.102"},
	}
	ipn(t, side, "link", "set", "lo", "up")
	ipn(t, side, "addr", "add", "169.254.169.254/32", "dev", "lo")
	ipn(t, side, "addr", "add", "169.254.170.2/32", "dev", "lo")
	for i, a := range apps {
		sv, av := fmt.Sprintf("vs%d", i), fmt.Sprintf("va%d", i)
		ipn(t, side, "link", "add", sv, "type", "veth", "peer", "name", av, "netns", a.ns)
		ipn(t, side, "addr", "add", a.net+".1/24", "dev", sv)
		ipn(t, side, "link", "set", sv, "up")
		ipn(t, a.ns, "link", "set", "lo", "up")
		ipn(t, a.ns, "addr", "add", a.net+".10/24", "dev", av)
		ipn(t, a.ns, "link", "set", av, "up")
		ipn(t, a.ns, "route", "add", "169.254.169.254/32", "via", a.net+".1")
		ipn(t, a.ns, "route", "add", "169.254.170.2/32", "via", a.net+".1")
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(sidecarConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := startSidecar(t, side, bin.sidecar, cfg)

	imds := runApp(t, apps[0].ns, bin.app, dir)
	ecs := runApp(t, apps[1].ns, bin.app, dir, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/creds")
	strangerIMDS := runApp(t, apps[2].ns, bin.app, dir)
	strangerECS := runApp(t, apps[2].ns, bin.app, dir, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/creds")

	stsMissing := false
	for _, c := range []struct {
		name   string
		got    appResult
		source string
		client string
		role   string
	}{
		{"IMDS at 169.254.169.254", imds, "EC2RoleProvider", "ns-imds", "app"},
		{"ECS endpoint at 169.254.170.2", ecs, "CredentialsEndpointProvider", "ns-ecs", "reports"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.got.err != nil {
				t.Fatalf("app failed: %v\nstdout: %s\nstderr: %s", c.got.err, c.got.stdout, c.got.stderr)
			}
			if got := c.got.fields["source"]; got != c.source {
				t.Errorf("credentials came from %q, want %q (the SDK default chain did not take the expected path)", got, c.source)
			}
			key := c.got.fields["key_id"]
			if !strings.HasPrefix(key, "ASIA") {
				t.Fatalf("key id %q is not a session key (ASIA...)", key)
			}
			if arn, ok := c.got.fields["arn"]; !ok {
				stsMissing = true
			} else {
				want := fmt.Sprintf("arn:aws:sts::000000000000:assumed-role/%s/e2e-%s", c.role, c.client)
				if arn != want {
					t.Errorf("sts:GetCallerIdentity = %s, want %s", arn, want)
				}
			}
			if !logs.issued(c.client, c.role, key[len(key)-4:]) {
				t.Errorf("the sidecar logged no `credentials issued` for client %s, role %s, key …%s\nlogs:\n%s", c.client, c.role, key[len(key)-4:], logs)
			}
		})
	}
	if imds.fields["key_id"] == ecs.fields["key_id"] {
		t.Errorf("both namespaces got the same key %s", imds.fields["key_id"])
	}
	for name, r := range map[string]appResult{"IMDS": strangerIMDS, "ECS": strangerECS} {
		if r.err == nil || r.fields["status"] != "403" {
			t.Errorf("untrusted namespace through %s: got %v, status %q; want a refusal with 403\nstdout: %s\nstderr: %s", name, r.err, r.fields["status"], r.stdout, r.stderr)
		}
	}
	if stsMissing {
		// REQUIRE_STS=0 accepts a build without the embedded STS listener.
		if os.Getenv("REQUIRE_STS") != "0" {
			t.Errorf("the embedded STS (sts.local.listen) did not answer sts:GetCallerIdentity (REQUIRE_STS=0 accepts that)")
		}
		t.Logf("NOTE: the embedded STS (sts.local.listen 169.254.170.2:8171) did not answer; roles were asserted through the sidecar's `credentials issued` log lines instead of sts:GetCallerIdentity")
	}
}

// requireHost skips unless the test can make namespaces (failing instead
// when CI=true, where a skip would hide a broken test).
func requireHost(t *testing.T) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true, so not skipping: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if testing.Short() {
		t.Skip("network-namespace end-to-end test: not in -short mode")
	}
	if os.Geteuid() != 0 {
		skip("network-namespace end-to-end test needs root (it creates namespaces and veth pairs); run: sudo go test ./e2e/")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("network-namespace end-to-end test needs ip(8) from iproute2: %v", err)
	}
	probe := fmt.Sprintf("%s%d-probe", nsPrefix, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		skip("cannot create network namespaces here: ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command("ip", "netns", "del", probe).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del %s: %v: %s", probe, err, out)
	}
}

// sweepStale deletes namespaces that earlier runs of this test made and, being
// killed, could not remove.
func sweepStale(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // ours, or its test is still running
		}
		t.Logf("removing namespace %s left by a killed run", name)
		exec.Command("ip", "netns", "del", name).Run()
	}
}

func newNetns(t *testing.T, name string) string {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	// Deleting a namespace also deletes the veth ends inside it.
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// ipn runs `ip -n NS args...`.
func ipn(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

type binaries struct{ sidecar, app string }

// buildBinaries builds the sidecar and the demo app from this module.
func buildBinaries(t *testing.T) binaries {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	dir := t.TempDir()
	b := binaries{sidecar: filepath.Join(dir, "credsidecar"), app: filepath.Join(dir, "app")}
	for out, pkg := range map[string]string{b.sidecar: "./cmd/credsidecar", b.app: "./examples/compose/app"} {
		args := []string{"build", "-o", out}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(goBin, append(args, pkg)...)
		cmd.Dir = ".." // the module root
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return b
}

// sidecarLogs collects the sidecar's JSON log lines.
type sidecarLogs struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
}

func (l *sidecarLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// issued reports whether a `credentials issued` line names client, role and
// the key id's last four characters.
func (l *sidecarLogs) issued(client, role, last4 string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.lines {
		if m["msg"] == "credentials issued" && m["client"] == client && m["role"] == role && m["key_id_last4"] == last4 {
			return true
		}
	}
	return false
}

// startSidecar runs `credsidecar serve` in ns and returns once it logs that
// every listener is up. It is stopped with SIGTERM at cleanup.
func startSidecar(t *testing.T, ns, bin, cfg string) *sidecarLogs {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "serve", "--config", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	// If this test process is killed, so is the sidecar (its namespaces are
	// removed by sweepStale on the next run).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sidecar: %v", err)
	}
	logs := &sidecarLogs{}
	serving := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			json.Unmarshal(sc.Bytes(), &m)
			logs.mu.Lock()
			logs.raw.Write(sc.Bytes())
			logs.raw.WriteByte('\n')
			logs.lines = append(logs.lines, m)
			logs.mu.Unlock()
			if m["msg"] == "credsidecar serving" {
				once.Do(func() { close(serving) })
			}
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-done // the pipe is read to its end before Wait closes it
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		// `ip netns exec` execs the sidecar: this pid is the sidecar's.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("sidecar exited after SIGTERM with %v\n%s", err, logs)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("sidecar did not stop within 15s of SIGTERM\n%s", logs)
		}
	})
	select {
	case <-serving:
	case err := <-exited:
		t.Fatalf("sidecar exited before serving: %v\n%s", err, logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("sidecar did not log `credsidecar serving` within 60s\n%s", logs)
	}
	return logs
}

type appResult struct {
	fields         map[string]string
	stdout, stderr string
	err            error
}

// runApp runs the demo app in ns with a clean AWS environment plus extra,
// and the SDK's default endpoints.
func runApp(t *testing.T, ns, bin, dir string, extra ...string) appResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bin)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"AWS_REGION=us-east-1",
		// No shared files: the chain must reach the container endpoint or IMDS.
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-such-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-such-credentials"),
		"AWS_ENDPOINT_URL_STS=http://169.254.170.2:8171",
		"APP_WAIT=5s",
	}, extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := appResult{fields: map[string]string{}, stdout: stdout.String(), stderr: stderr.String(), err: err}
	for _, f := range strings.Fields(r.stdout) {
		if k, v, ok := strings.Cut(f, "="); ok {
			r.fields[k] = v
		}
	}
	t.Logf("%s: %s", ns, strings.TrimSpace(r.stdout))
	return r
}
