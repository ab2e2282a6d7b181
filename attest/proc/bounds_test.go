//go:build linux

package proc_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/attest/proc"
)

// Helper mode (CSCI_MANY_FDS): open as many fds as RLIMIT_NOFILE's hard
// limit allows, as any unprivileged process may, print how many, and wait
// for stdin to close.
func init() {
	if os.Getenv("CSCI_MANY_FDS") == "" {
		return
	}
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	rl.Cur = rl.Max
	unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	n := 0
	for {
		if _, err := unix.Dup(fd); err != nil {
			break
		}
		n++
	}
	fmt.Println(n)
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// A user whose processes hold as many fds as its limits allow floods
// connections: its scans must not hold every slot while another uid's
// attestation waits. A uid scans one at a time, and a scan gives up at
// half the wait.
func TestOneUIDCannotStarveOthersScans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const attacker, victim = 4840, 4841
	self := copyExe(t, publicDir(t), "fds", "")
	total := manyFDs(t, self, attacker, 10)
	s, ino := heldSocket(t)
	startHolder(t, victim, "", s)

	a, _, err := proc.New(proc.Options{ExeMatched: true, Wait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Attest(attacker, 1)
	t.Logf("attacker: %d fds; its scan: %v", total, err)

	// The attacker's connections, each asking for attestation; its scan
	// before them counts as one.
	flood(t, a, []uint32{attacker, attacker, attacker, attacker}, 2)
	for range 3 {
		if _, err := a.Attest(victim, ino); err != nil {
			t.Fatalf("uid %d's attestation while uid %d floods: %v", victim, attacker, err)
		}
	}
	if _, err := a.Attest(attacker, 1); !errors.Is(err, proc.ErrBusy) {
		t.Logf("the attacker's own scan: %v (its processes may have fit the time)", err)
	}
}

// An executable over the hashing bound has no exe_sha256: any user can
// make a file of any size for free (a sparse tail still runs), and hashing
// it per connection would be CPU on demand.
func TestHugeExecutableIsNotHashed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const uid = 4850
	dir := publicDir(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	small, huge := dir+"/small", dir+"/huge"
	for _, p := range []string{small, huge} {
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(huge, proc.MaxHashBytes+1); err != nil { // sparse
		t.Fatal(err)
	}
	a, _, err := proc.New(proc.Options{Hash: true, ExeMatched: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		exe    string
		hashed bool
	}{{small, true}, {huge, false}} {
		f, ino := heldSocket(t)
		cmd := exec.Command(tc.exe, "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		var p *agent.Process
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			// until the exec is done and /proc/PID/exe names the copy
			if p, err = a.Attest(uid, ino); err == nil && p.Exe == tc.exe {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v, %v", tc.exe, p, err)
			}
		}
		if got := p.ExeSHA256 != ""; got != tc.hashed {
			t.Errorf("%s (%d bytes): hashed %v (%q), want %v", tc.exe, map[bool]int64{true: int64(len(b)), false: proc.MaxHashBytes + 1}[tc.hashed], got, p.ExeSHA256, tc.hashed)
		}
	}
}

// manyFDs starts n processes of uid, each holding as many fds as its limit
// allows, and returns the total.
func manyFDs(t *testing.T, exe string, uid uint32, n int) int {
	t.Helper()
	total := 0
	for range n {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "CSCI_MANY_FDS=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); cmd.Wait() })
		line, _ := bufio.NewReader(out).ReadString('\n')
		k, _ := strconv.Atoi(strings.TrimSpace(line))
		total += k
	}
	return total
}

// Users with many uids (a subordinate uid range gives each 65536) flood
// connections from processes with huge fd tables, one scan per uid at a
// time: a system service's attestation still gets a scan, in the slot
// only system uids may take.
func TestManyUIDsCannotStarveSystemScans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const victim = 990 // a system uid
	self := copyExe(t, publicDir(t), "fds", "")
	attackers := make([]uint32, 10)
	total := 0
	for i := range attackers {
		attackers[i] = uint32(104860 + i) // subordinate-range uids
		total += manyFDs(t, self, attackers[i], 2)
	}
	s, ino := heldSocket(t)
	startHolder(t, victim, "", s)
	a, _, err := proc.New(proc.Options{ExeMatched: true, Wait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d attacker uids, %d fds", len(attackers), total)
	flood(t, a, attackers, 2) // both user slots taken
	for range 5 {
		if _, err := a.Attest(victim, ino); err != nil {
			t.Fatalf("system uid %d's attestation while %d user uids flood: %v", victim, len(attackers), err)
		}
	}
}

// A user's subordinate uids (newuidmap gives each user 65 536) flood
// connections from processes with huge fd tables: they scan in their
// owner's one turn, so another user's attestation waits behind at most one
// of their scans, not behind one per uid.
func TestSubordinateUIDsShareTheirOwnersTurn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const owner, victim = 4850, 4851 // two users; the victim's uid is not a system one
	subuid := filepath.Join(t.TempDir(), "subuid")
	if err := os.WriteFile(subuid, []byte(fmt.Sprintf("%d:204850:65536\n", owner)), 0o644); err != nil {
		t.Fatal(err)
	}
	self := copyExe(t, publicDir(t), "fds", "")
	attackers := make([]uint32, 10)
	total := 0
	for i := range attackers {
		attackers[i] = uint32(204850 + i)
		total += manyFDs(t, self, attackers[i], 2)
	}
	s, ino := heldSocket(t)
	startHolder(t, victim, "", s)
	// A wait of 1 s: a flood scan gives up after 500 ms, and the victim's
	// own scan has the rest, with room for a loaded machine.
	a, _, err := proc.New(proc.Options{ExeMatched: true, Wait: time.Second, SubUIDFile: subuid})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d uids of user %d's subordinate range, %d fds", len(attackers), owner, total)
	flood(t, a, attackers, 3)
	for range 5 {
		if _, err := a.Attest(victim, ino); err != nil {
			t.Fatalf("uid %d's attestation while %d uids of user %d's range flood: %v", victim, len(attackers), owner, err)
		}
	}
}

// flood asks a for attestations of uids' (nonexistent) socket 1 in a loop,
// one goroutine per entry, until the test ends, and returns once a has run
// at least scans scans: the flood is then holding slots, not about to.
func flood(t *testing.T, a *proc.Attestor, uids []uint32, scans int64) {
	t.Helper()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, uid := range uids {
		wg.Go(func() {
			for !stop.Load() {
				a.Attest(uid, 1)
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	for deadline := time.Now().Add(10 * time.Second); a.Scans.Load() < scans; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the flood ran %d scans in 10 s, not %d", a.Scans.Load(), scans)
		}
	}
}
