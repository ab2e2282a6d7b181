//go:build linux

package proc_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/attest/proc"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/imds"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/httpserver"
)

// variant is patched in copies of the test binary to make a modified
// executable of the same size.
var variant = "credsidecar-variant:AAAA"

// TestMain doubles as the client program: run with CSCI_URL set, the test
// binary waits for a line on stdin (the test moves it into a cgroup
// meanwhile), asks the sidecar for credentials and prints the status and
// role ARN.
func TestMain(m *testing.M) {
	if u := os.Getenv("CSCI_URL"); u != "" {
		os.Exit(client(u))
	}
	os.Exit(m.Run())
}

func client(u string) int {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
		fmt.Println("stdin:", err)
		return 1
	}
	resp, err := http.Get(u)
	if err != nil {
		fmt.Println("get:", err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s %s\n", resp.StatusCode, variant[len(variant)-4:], b)
	return 0
}

// cgroupBase is where the test makes its cgroups: the name=systemd (v1) or
// unified (v2) hierarchy, at systemd's root as the attestor sees it.
func cgroupBase(t *testing.T, a *proc.Attestor) string {
	t.Helper()
	var mnt string
	switch {
	case exists("/sys/fs/cgroup/systemd/cgroup.procs"):
		mnt = "/sys/fs/cgroup/systemd"
	case exists("/sys/fs/cgroup/cgroup.controllers"):
		mnt = "/sys/fs/cgroup"
	default:
		needs(t, "a name=systemd or cgroup v2 hierarchy mounted under /sys/fs/cgroup")
	}
	return filepath.Join(mnt, a.Root())
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// needs skips, or fails under CI=true, where the test cannot run.
func needs(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs %s (CI must provide it)", what)
	}
	t.Skipf("needs %s (runs in CI)", what)
}

// makeCgroup creates base+rel and removes it (and its parents the test
// made) at the end.
func makeCgroup(t *testing.T, base, rel string) string {
	t.Helper()
	dir := filepath.Join(base, rel)
	var made []string
	for d := dir; d != base && !exists(d); d = filepath.Dir(d) {
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("mkdir cgroup: %v", err)
	}
	t.Cleanup(func() {
		for _, d := range made { // deepest first
			if err := os.Remove(d); err != nil {
				t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
	})
	return dir
}

// staticSource hands out credentials naming the role and session.
type staticSource struct{}

func (staticSource) Retrieve(_ context.Context, req agent.Request) (*agent.Credentials, error) {
	return &agent.Credentials{AccessKeyID: "ASIATEST" + strconv.Itoa(len(req.SessionName)), SecretAccessKey: "s", SessionToken: "t",
		Expiration: time.Now().Add(time.Hour), Issued: time.Now(), RoleARN: req.RoleARN,
		AssumedRoleARN: strings.Replace(req.RoleARN, ":iam:", ":sts:", 1) + "/" + req.SessionName}, nil
}

// sidecar serves the credential endpoints on 127.0.0.1 with the real
// sock_diag lookup and attestor.
func sidecar(t *testing.T, yml string, a *proc.Attestor) string {
	t.Helper()
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ag, err := agent.New(agent.Options{Source: staticSource{}, Logger: zaptest.NewLogger(t), DisableWarm: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ag.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := imds.New(imds.Options{Agent: ag, Config: cfg, Logger: zaptest.NewLogger(t), ListenAddrs: []string{ln.Addr().String()},
		Socket: imds.SockDiagSocket(), Process: a})
	if err != nil {
		t.Fatal(err)
	}
	hs := httpserver.New(httpserver.Options{Handler: srv.Handler(), ConnContext: srv.ConnContext, Logger: zaptest.NewLogger(t)})
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close(); <-done })
	return "http://" + ln.Addr().String() + "/creds"
}

// copyExe copies the test binary to dir/name (readable by everyone), with
// the variant marker replaced when patch is not "".
func copyExe(t *testing.T, dir, name, patch string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if patch != "" {
		b = bytes.ReplaceAll(b, []byte(variant), []byte(variant[:len(variant)-4]+patch))
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// publicDir is a directory every uid can read and search.
func publicDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "csci-attest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// run starts exe (with args before it, e.g. unshare) as uid, moves it into
// cgroup dir (when not ""), lets it ask url, and returns its status and
// answer.
func run(t *testing.T, url string, uid uint32, cgroup string, argv ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "CSCI_URL="+url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	if cgroup != "" {
		if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatalf("move %d into %s: %v", cmd.Process.Pid, cgroup, err)
		}
	}
	io.WriteString(in, "go\n")
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v as uid %d: %v: %s", argv, uid, err, out.String())
	}
	s := strings.TrimSpace(out.String())
	s = s[strings.LastIndexByte(s, '\n')+1:]
	code, rest, _ := strings.Cut(s, " ")
	n, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("%v as uid %d: %s", argv, uid, out.String())
	}
	return n, rest
}

func role(t *testing.T, answer string) string {
	t.Helper()
	i := strings.Index(answer, `"RoleArn":"`)
	if i < 0 {
		return ""
	}
	r := answer[i+len(`"RoleArn":"`):]
	r = r[:strings.IndexByte(r, '"')]
	return r[strings.LastIndexByte(r, '/')+1:]
}

// TestRealProcesses: client processes placed in real cgroups named like
// systemd units, running as other uids, from copied and modified
// executables, each get their own client's role, and every impostor 403:
// a user's unit of the same name, a cgroup named like it below a
// delegated unit, a copy of the binary elsewhere, a modified binary, a
// binary rewritten with its mtime put back, and a bind mount in an
// unprivileged user's mount namespace.
func TestRealProcesses(t *testing.T) {
	if os.Geteuid() != 0 {
		needs(t, "root (to place processes in cgroups and run them as other uids)")
	}
	a, warnings, err := proc.New(proc.Options{Hash: true, ExeMatched: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Logf("attestor warning: %s", w)
	}
	base := cgroupBase(t, a)
	dir := publicDir(t)
	good := copyExe(t, dir, "billing", "")
	copyElsewhere := copyExe(t, dir, "billing-copy", "")
	modified := copyExe(t, dir, "billing-modified", "BBBB")
	tool := copyExe(t, dir, "tool", "")
	goodSum, toolSum := sha(t, good), sha(t, tool)
	if sha(t, modified) == goodSum {
		t.Fatal("the patched copy has the same hash")
	}
	sys := makeCgroup(t, base, "system.slice/csci-billing.service")
	other := makeCgroup(t, base, "system.slice/csci-other.service")
	user := makeCgroup(t, base, "user.slice/user-4801.slice/user@4801.service/app.slice/csci-billing.service")
	delegated := makeCgroup(t, base, "system.slice/csci-runner.service/system.slice/csci-billing.service")

	yml := fmt.Sprintf(`
sts: { mode: local }
roles:
  - {name: billing}
  - {name: user-billing}
  - {name: by-exe}
  - {name: by-hash}
  - {name: tool}
  - {name: runner}
clients:
  - {name: billing, match: {systemd_unit: csci-billing.service}, roles: [billing]}
  - {name: user-billing, match: {systemd_user_unit: csci-billing.service, uids: [4801]}, roles: [user-billing]}
  - {name: runner, match: {cgroup: "/system.slice/csci-runner.service/*", uids: [4805]}, roles: [runner]}
  - {name: by-exe, match: {exe: %q, uids: [4802]}, roles: [by-exe]}
  - {name: by-hash, match: {exe_sha256: %s, uids: [4803]}, roles: [by-hash]}
  - {name: tool, match: {exe: %q, exe_sha256: %s, uids: [4804]}, roles: [tool]}
`, good, goodSum, tool, toolSum)
	url := sidecar(t, yml, a)

	for _, tc := range []struct {
		name   string
		uid    uint32
		cgroup string
		argv   []string
		want   string // role, or "" for 403
	}{
		{"the system unit", 4800, sys, []string{good}, "billing"},
		{"the system unit, from a modified binary", 4806, sys, []string{modified}, "billing"},
		{"another system unit", 4800, other, []string{good}, ""},
		{"no unit at all", 4800, "", []string{good}, ""},
		{"a user's unit of the same name is not the system unit", 4801, user, []string{good}, "user-billing"},
		{"a user's unit of the same name, another uid", 4807, user, []string{good}, ""},
		{"a cgroup named like the unit below a delegated unit", 4800, delegated, []string{good}, ""},
		{"below the delegated unit, by cgroup", 4805, delegated, []string{good}, "runner"},
		{"the matched executable", 4802, "", []string{good}, "by-exe"},
		{"a copy elsewhere is not the matched executable", 4802, "", []string{copyElsewhere}, ""},
		{"the hashed executable, copied elsewhere", 4803, "", []string{copyElsewhere}, "by-hash"},
		{"a modified executable", 4803, "", []string{modified}, ""},
		{"path and hash", 4804, "", []string{tool}, "tool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, answer := run(t, url, tc.uid, tc.cgroup, tc.argv...)
			switch {
			case tc.want == "" && code != http.StatusForbidden:
				t.Fatalf("got %d %s, want 403", code, answer)
			case tc.want != "" && (code != 200 || role(t, answer) != tc.want):
				t.Fatalf("got %d %s, want role %s", code, answer, tc.want)
			}
		})
	}

	t.Run("a binary rewritten with its mtime put back", func(t *testing.T) {
		st, err := os.Stat(tool)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(tool)
		b = bytes.ReplaceAll(b, []byte(variant), []byte(variant[:len(variant)-4]+"CCCC"))
		f, err := os.OpenFile(tool, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Chtimes(tool, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
		if st2, _ := os.Stat(tool); st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime()) {
			t.Fatal("the rewrite changed size or mtime")
		}
		code, answer := run(t, url, 4804, "", tool)
		if code != http.StatusForbidden {
			t.Fatalf("got %d %s, want 403", code, answer)
		}
		if !strings.Contains(answer, "CCCC") {
			t.Fatalf("the rewritten binary ran the old code: %s", answer)
		}
	})

	t.Run("a bind mount over the matched path in an unprivileged user namespace", func(t *testing.T) {
		evil := copyExe(t, dir, "evil", "EEEE")
		// Inside: /proc/self/exe prints the matched path, but runs evil.
		code, answer := run(t, url, 4802, "", "unshare", "-Urm", "sh", "-c", fmt.Sprintf("mount --bind %s %s && exec %s", evil, good, good))
		if !strings.Contains(answer, "EEEE") {
			t.Fatalf("the bind mount did not take: %d %s", code, answer)
		}
		if code != http.StatusForbidden {
			t.Fatalf("got %d %s, want 403", code, answer)
		}
	})
}

// TestPIDReuse: a process that held a socket exits and its PID goes to
// another process of the same uid; attestation of the socket finds no
// holder instead of describing the newcomer.
func TestPIDReuse(t *testing.T) {
	if os.Geteuid() != 0 {
		needs(t, "root (to run processes as another uid and steer PID allocation)")
	}
	a, _, err := proc.New(proc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := cgroupBase(t, a)
	cg := makeCgroup(t, base, "system.slice/csci-reuse.service")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srvSide, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srvSide.Close()
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	inode := st.Ino
	const uid = 4810
	start := func(extra *os.File, cgroup string) *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		if extra != nil {
			cmd.ExtraFiles = []*os.File{extra}
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cgroup != "" {
			if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
				t.Fatal(err)
			}
		}
		return cmd
	}
	holder := start(f, cg)
	f.Close() // the holder and the test's conn hold the socket now
	p, err := a.Attest(uid, inode)
	if err != nil || p.PID != holder.Process.Pid || p.Unit != "csci-reuse.service" {
		t.Fatalf("holder: %+v, %v", p, err)
	}
	pid := holder.Process.Pid
	holder.Process.Kill()
	holder.Wait()
	reuse := reusePID(t, pid, func() *exec.Cmd { return start(nil, cg) })
	defer func() { reuse.Process.Kill(); reuse.Wait() }()
	if p, err := a.Attest(uid, inode); !errors.Is(err, proc.ErrGone) {
		t.Fatalf("after PID reuse: %+v, %v; want ErrGone", p, err)
	}
	if p, err := a.ByPIDHolding(pid, inode); !errors.Is(err, proc.ErrGone) {
		t.Fatalf("by PID after reuse: %+v, %v; want ErrGone", p, err)
	}
}

// heldSocket is the client end of a loopback connection as a file to hand
// to other processes, and its inode; both ends stay open until the test
// ends (the test's own fds are root's, which the attestor of another uid
// does not scan).
func heldSocket(t *testing.T) (*os.File, uint64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // f holds the socket now
	t.Cleanup(func() { f.Close(); s.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, st.Ino
}

// startHolder starts a process of uid in cgroup (when not "") holding
// files as fds 3, 4, …; it is killed when the test ends.
func startHolder(t *testing.T, uid uint32, cgroup string, files ...*os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	cmd.ExtraFiles = files
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if cgroup != "" {
		if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	return cmd
}

// reusePID starts processes with start until one gets pid (root only:
// ns_last_pid steers the allocation; retried, since other processes on
// the host — other test binaries, and new threads of this one, which take
// PIDs too — may take it first: under a loaded CI, 20 tries were not
// always enough).
func reusePID(t *testing.T, pid int, start func() *exec.Cmd) *exec.Cmd {
	t.Helper()
	for range 500 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatalf("ns_last_pid: %v", err)
		}
		cmd := start()
		if cmd.Process.Pid == pid {
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Fatalf("could not get PID %d reused", pid)
	return nil
}

// TestFastPath: a socket of a process that held one of the uid's attested
// sockets is attested without a scan, and the fast path never describes
// the wrong process: a hinted process not holding the socket, or exited
// with its pid reused (by the same uid or another), falls back to the scan
// or describes the newcomer only by the socket it really holds; while a
// client reads the executable, every attestation scans, and processes in
// different cgroups sharing a socket are ambiguous.
func TestFastPath(t *testing.T) {
	if os.Geteuid() != 0 {
		needs(t, "root (to place processes in cgroups and run them as other uids)")
	}
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	a, _, err := proc.New(proc.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	base := cgroupBase(t, a)
	cgA := makeCgroup(t, base, "system.slice/csci-fast-a.service")
	cgB := makeCgroup(t, base, "system.slice/csci-fast-b.service")
	const uid, otherUID = 4820, 4821
	expect := func(t *testing.T, inode uint64, unit string, scans, hits int64) *agent.Process {
		t.Helper()
		s0, h0 := a.Scans.Load(), a.FastHits.Load()
		p, err := a.Attest(uid, inode)
		if err != nil || p.Unit != unit {
			t.Fatalf("attest: %+v, %v; want unit %s", p, err, unit)
		}
		if ds, dh := a.Scans.Load()-s0, a.FastHits.Load()-h0; ds != scans || dh != hits {
			t.Fatalf("%d scans and %d fast-path hits; want %d and %d", ds, dh, scans, hits)
		}
		return p
	}

	s1, ino1 := heldSocket(t)
	s2, ino2 := heldSocket(t)
	hA := startHolder(t, uid, cgA, s1, s2)
	t.Run("the first socket is found by a scan", func(t *testing.T) {
		if p := expect(t, ino1, "csci-fast-a.service", 1, 0); p.PID != hA.Process.Pid || p.Exe == "" {
			t.Fatalf("%+v: want pid %d and its executable", p, hA.Process.Pid)
		}
	})
	t.Run("the hinted process's next socket needs no scan", func(t *testing.T) {
		if p := expect(t, ino2, "csci-fast-a.service", 0, 1); p.Exe != "" {
			t.Fatalf("the fast path described the executable (%q): another holder could run another", p.Exe)
		}
	})

	// A process moved to another cgroup (root's doing: out of a unit
	// needs it) is believed in its old one for at most CgroupTTL, the age
	// of the cgroup the fast path read through its pin.
	t.Run("a pinned process moved to another unit is seen there after the cgroup's TTL", func(t *testing.T) {
		sm, inoM := heldSocket(t)
		sn, inoN := heldSocket(t)
		sp, inoP := heldSocket(t)
		h := startHolder(t, uid, cgA, sm, sn, sp)
		expect(t, inoM, "csci-fast-a.service", 1, 0)
		expect(t, inoN, "csci-fast-a.service", 0, 1) // read through the pin now
		if err := os.WriteFile(filepath.Join(cgB, "cgroup.procs"), []byte(strconv.Itoa(h.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
		clk.Advance(proc.CgroupTTL)
		expect(t, inoP, "csci-fast-b.service", 0, 1)
		if err := os.WriteFile(filepath.Join(cgA, "cgroup.procs"), []byte(strconv.Itoa(h.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
		clk.Advance(proc.CgroupTTL)
	})

	s3, ino3 := heldSocket(t)
	startHolder(t, uid, cgB, s3)
	t.Run("a hinted process that does not hold the socket: the scan finds its holder", func(t *testing.T) {
		expect(t, ino3, "csci-fast-b.service", 1, 0)
	})

	t.Run("while a client reads the executable, every attestation scans", func(t *testing.T) {
		a.SetExeMatched(true)
		defer a.SetExeMatched(false)
		if p := expect(t, ino2, "csci-fast-a.service", 1, 0); p.Exe == "" {
			t.Fatalf("%+v: the scan path did not describe the executable", p)
		}
	})

	s4, ino4 := heldSocket(t)
	startHolder(t, uid, cgA, s4)
	startHolder(t, uid, cgB, s4)
	t.Run("a socket shared across cgroups is ambiguous on the scan path", func(t *testing.T) {
		for _, exe := range []bool{true, false} { // no hinted process holds it: both scan
			a.SetExeMatched(exe)
			if p, err := a.Attest(uid, ino4); !errors.Is(err, proc.ErrAmbiguous) {
				t.Fatalf("exe matched %v: %+v, %v; want ErrAmbiguous", exe, p, err)
			}
		}
		a.SetExeMatched(false)
	})

	// The fast path finds a holder, not all: a hinted process sharing its
	// socket with a process in another cgroup is believed for its own
	// cgroup. Getting there takes what could move the other process into
	// that cgroup itself (root, here), or the hinted process's own doing.
	s5, ino5 := heldSocket(t)
	startHolder(t, uid, cgA, s5)
	t.Run("a hinted holder is believed for its cgroup", func(t *testing.T) {
		expect(t, ino5, "csci-fast-a.service", 1, 0)
		startHolder(t, uid, cgB, s5)
		expect(t, ino5, "csci-fast-a.service", 0, 1)
		a.SetExeMatched(true)
		defer a.SetExeMatched(false)
		if p, err := a.Attest(uid, ino5); !errors.Is(err, proc.ErrAmbiguous) {
			t.Fatalf("with the executable matched: %+v, %v; want ErrAmbiguous", p, err)
		}
	})

	for _, tc := range []struct {
		name     string
		reuseUID uint32
		want     string // the reused pid's socket: its unit, or "" for gone
	}{
		{"a hinted pid that exited and was reused by the same uid", uid, "csci-fast-b.service"},
		{"a hinted pid that exited and was reused by another uid", otherUID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s6, ino6 := heldSocket(t)
			s7, ino7 := heldSocket(t)
			h := startHolder(t, uid, cgA, s6)
			expect(t, ino6, "csci-fast-a.service", 1, 0) // the latest hint now
			pid := h.Process.Pid
			h.Process.Kill()
			h.Wait()
			reusePID(t, pid, func() *exec.Cmd { return startHolder(t, tc.reuseUID, cgB, s7) })
			if p, err := a.Attest(uid, ino6); !errors.Is(err, proc.ErrGone) {
				t.Fatalf("the exited holder's socket: %+v, %v; want ErrGone", p, err)
			}
			s0, h0 := a.Scans.Load(), a.FastHits.Load()
			p, err := a.Attest(uid, ino7)
			t.Logf("the reused pid's socket: %d scans, %d fast-path hits", a.Scans.Load()-s0, a.FastHits.Load()-h0)
			if hit := a.FastHits.Load() > h0; hit != (tc.want != "") {
				t.Errorf("fast path hit: %v, want %v", hit, tc.want != "")
			}
			switch {
			case tc.want == "" && !errors.Is(err, proc.ErrGone):
				t.Fatalf("a socket of uid %d's process at the hinted pid: %+v, %v; want ErrGone (uid %d's attestation)", tc.reuseUID, p, err, uid)
			case tc.want != "" && (err != nil || p.Unit != tc.want || p.PID != pid):
				t.Fatalf("the newcomer's own socket: %+v, %v; want pid %d in %s", p, err, pid, tc.want)
			}
		})
	}
}
