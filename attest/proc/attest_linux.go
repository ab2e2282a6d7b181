//go:build linux

package proc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/credsidecar/credsidecar/agent"
)

// Outcomes of an attestation, the bounded label set of the metrics.
const (
	OutcomeFound     = "found"
	OutcomeAmbiguous = "ambiguous"
	OutcomeGone      = "gone"
	OutcomeHidden    = "hidden"
	OutcomeBusy      = "busy"
)

// Errors of an attestation, by outcome.
var (
	// ErrGone: no process holds the socket (it exited, or passed it on).
	ErrGone = errors.New("no process holds the socket")
	// ErrAmbiguous: processes with different attributes share the socket.
	ErrAmbiguous = errors.New("processes with different attributes share the socket")
	// ErrHidden: /proc hides the socket owner's processes from the sidecar.
	ErrHidden = errors.New("/proc hides the socket owner's processes")
	// ErrBusy: the bound on scans was reached and the wait timed out.
	ErrBusy = errors.New("too many process scans waiting")
)

// Options configure an Attestor.
type Options struct {
	// Hash says whether to hash executables (some client has exe_sha256).
	Hash bool
	// MaxScans bounds the /proc scans running at once (0 = 2); Wait bounds
	// how long an attestation waits for one (0 = 2s).
	MaxScans int
	Wait     time.Duration
	// Outcome, when set, counts each attestation's outcome.
	Outcome func(outcome string)
}

// Attestor finds and describes the process behind a client socket.
type Attestor struct {
	proc    string
	hash    atomic.Bool
	wait    time.Duration
	outcome func(string)
	root    string // systemd's root cgroup
	mntNS   uint64 // the sidecar's mount namespace inode
	hostNS  uint64 // PID 1's mount namespace inode (0 if unreadable)
	sem     chan struct{}

	mu      sync.Mutex
	pending map[uint32]*scan // per uid: the scan not started yet, which new lookups join

	hashMu sync.Mutex
	hashes map[fileKey]string

	// Scans counts /proc scans run (bench and tests read it).
	Scans atomic.Int64
}

type scan struct {
	done    chan struct{}
	holders map[uint64][]int // socket inode -> pids holding it
	err     error
}

// fileKey identifies an executable's contents as far as the file system
// tells: its owner can put mtime back, but not ctime.
type fileKey struct {
	dev, ino, size uint64
	mtime, ctime   unix.Timespec
}

// New builds an Attestor and reports, as warnings, what will make its
// conditions fail closed on this system (hidden /proc, no CAP_SYS_PTRACE, a
// PID namespace of its own).
func New(opts Options) (*Attestor, []string, error) {
	a := &Attestor{proc: "/proc", wait: opts.Wait, outcome: opts.Outcome, pending: map[uint32]*scan{}, hashes: map[fileKey]string{}}
	if a.wait == 0 {
		a.wait = 2 * time.Second
	}
	n := opts.MaxScans
	if n <= 0 {
		n = 2
	}
	a.sem = make(chan struct{}, n)
	a.hash.Store(opts.Hash)
	if a.outcome == nil {
		a.outcome = func(string) {}
	}
	data, err := os.ReadFile(a.proc + "/1/cgroup")
	if err != nil {
		return nil, nil, fmt.Errorf("attest: read PID 1's cgroup: %w", err)
	}
	pid1, err := CgroupPath(data)
	if err != nil {
		return nil, nil, fmt.Errorf("attest: PID 1's cgroup: %w", err)
	}
	a.root = SystemdRoot(pid1)
	var st unix.Stat_t
	if err := unix.Stat(a.proc+"/self/ns/mnt", &st); err != nil {
		return nil, nil, fmt.Errorf("attest: stat own mount namespace: %w", err)
	}
	a.mntNS = st.Ino
	if unix.Stat(a.proc+"/1/ns/mnt", &st) == nil {
		a.hostNS = st.Ino
	}
	return a, a.warnings(), nil
}

// SetHash turns hashing of executables on or off (a reload added or
// removed the last exe_sha256 condition).
func (a *Attestor) SetHash(on bool) { a.hash.Store(on) }

// Root is systemd's root cgroup as the sidecar sees it.
func (a *Attestor) Root() string { return a.root }

func (a *Attestor) warnings() []string {
	var w []string
	if status, err := os.ReadFile(a.proc + "/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "NSpid:"); ok && len(strings.Fields(rest)) > 1 {
				w = append(w, "the sidecar runs in a PID namespace of its own: processes outside it are invisible, so systemd_unit/cgroup/exe conditions fail closed for them")
			}
		}
	}
	if m, err := os.ReadFile(a.proc + "/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(m), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && f[4] == a.proc && (strings.Contains(line, "hidepid=") && !strings.Contains(line, "hidepid=0") && !strings.Contains(line, "hidepid=off")) {
				w = append(w, "/proc is mounted with hidepid (or ProtectProc=invisible): other users' processes are hidden, so systemd_unit/cgroup/exe conditions fail closed for them")
			}
		}
	}
	if _, err := os.ReadDir(a.proc + "/1/fd"); err != nil {
		w = append(w, fmt.Sprintf("cannot read PID 1's open files (%v): without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH other users' sockets cannot be traced to their processes, and conditions on them fail closed", err))
	}
	return w
}

// Attest returns the process holding the client socket with inode, owned
// by uid (both from sock_diag). It fails closed: any doubt is an error.
func (a *Attestor) Attest(uid uint32, inode uint64) (*agent.Process, error) {
	p, err := a.attest(uid, inode)
	switch {
	case err == nil:
		a.outcome(OutcomeFound)
	case errors.Is(err, ErrAmbiguous):
		a.outcome(OutcomeAmbiguous)
	case errors.Is(err, ErrHidden):
		a.outcome(OutcomeHidden)
	case errors.Is(err, ErrBusy):
		a.outcome(OutcomeBusy)
	default:
		a.outcome(OutcomeGone)
	}
	if err != nil {
		return nil, fmt.Errorf("attest socket inode %d of uid %d: %w", inode, uid, err)
	}
	return p, nil
}

func (a *Attestor) attest(uid uint32, inode uint64) (*agent.Process, error) {
	if inode == 0 {
		return nil, ErrGone
	}
	pids, err := a.holders(uid, inode)
	if err != nil {
		return nil, err
	}
	if len(pids) == 0 {
		return nil, ErrGone
	}
	var first *agent.Process
	for _, pid := range pids {
		p, err := a.ByPIDHolding(pid, inode)
		if err != nil {
			if errors.Is(err, ErrGone) && len(pids) > 1 {
				continue // one of several holders exited
			}
			return nil, err
		}
		if first == nil {
			first = p
			continue
		}
		if first.Unit != p.Unit || first.UserUnit != p.UserUnit || first.Cgroup != p.Cgroup || first.Exe != p.Exe || first.ExeSHA256 != p.ExeSHA256 {
			return nil, fmt.Errorf("pids %d and %d: %w", first.PID, p.PID, ErrAmbiguous)
		}
	}
	if first == nil {
		return nil, ErrGone
	}
	return first, nil
}

// holders returns the pids of uid's processes that hold socket inode. The
// scan joins one not yet started for the same uid, so a flood of
// connections from one user costs one scan per batch; at most MaxScans run
// at once. A scan that started before the lookup is never joined: it may
// have passed the holder already.
func (a *Attestor) holders(uid uint32, inode uint64) ([]int, error) {
	a.mu.Lock()
	sc := a.pending[uid]
	if sc == nil {
		sc = &scan{done: make(chan struct{})}
		a.pending[uid] = sc
		go a.run(uid, sc)
	}
	a.mu.Unlock()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case <-sc.done:
	case <-t.C:
		return nil, ErrBusy
	}
	if sc.err != nil {
		return nil, sc.err
	}
	return sc.holders[inode], nil
}

func (a *Attestor) run(uid uint32, sc *scan) {
	a.sem <- struct{}{}
	a.mu.Lock()
	delete(a.pending, uid) // later lookups start a new scan
	a.mu.Unlock()
	a.Scans.Add(1)
	sc.holders, sc.err = a.scanUID(uid)
	<-a.sem
	close(sc.done)
}

// scanUID maps the socket inodes held by uid's processes to their pids.
func (a *Attestor) scanUID(uid uint32) (map[uint64][]int, error) {
	d, err := os.Open(a.proc)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", a.proc, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", a.proc, err)
	}
	out := map[uint64][]int{}
	var denied bool
	var buf [64]byte
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(a.proc+"/"+name, &st) != nil || st.Uid != uid {
			continue
		}
		dir := a.proc + "/" + name + "/fd"
		fdd, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, os.ErrPermission) {
				denied = true
			}
			continue
		}
		fds, _ := fdd.Readdirnames(-1)
		fdd.Close()
		for _, fd := range fds {
			n, err := unix.Readlink(dir+"/"+fd, buf[:])
			if err != nil {
				continue
			}
			if ino, ok := socketInode(buf[:n]); ok {
				out[ino] = append(out[ino], pid)
			}
		}
	}
	if len(out) == 0 && denied {
		return nil, ErrHidden
	}
	return out, nil
}

func socketInode(link []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(link, []byte("socket:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	ino, err := strconv.ParseUint(string(rest[:len(rest)-1]), 10, 64)
	return ino, err == nil
}

// ByPIDHolding describes process pid, pinned by a pidfd while its
// attributes are read, and checks afterwards that it still lives and still
// holds socket inode (inode 0: no socket check, as for `explain --pid`).
// A PID reused by another process between the scan and the read fails the
// check: the new process does not hold the socket.
func (a *Attestor) ByPIDHolding(pid int, inode uint64) (*agent.Process, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %v: %w", pid, err, ErrGone)
	}
	defer unix.Close(pidfd)
	if inode != 0 && !a.holds(pid, inode) {
		return nil, fmt.Errorf("pid %d no longer holds the socket: %w", pid, ErrGone)
	}
	p := &agent.Process{PID: pid}
	dir := a.proc + "/" + strconv.Itoa(pid)
	if data, err := os.ReadFile(dir + "/cgroup"); err == nil {
		if path, err := CgroupPath(data); err == nil {
			if rel, ok := Relative(path, a.root); ok {
				p.Cgroup = rel
				p.Unit, p.UserUnit = Units(rel)
			}
		}
	}
	p.Exe, p.ExeSHA256 = a.exe(dir)
	// The reads above are the process's only if it is still alive now (a
	// pid is not reused while its process exists) and still holds the socket.
	if exited(pidfd) {
		return nil, fmt.Errorf("pid %d exited during attestation: %w", pid, ErrGone)
	}
	if inode != 0 && !a.holds(pid, inode) {
		return nil, fmt.Errorf("pid %d no longer holds the socket: %w", pid, ErrGone)
	}
	return p, nil
}

// holds reports whether pid has socket inode open.
func (a *Attestor) holds(pid int, inode uint64) bool {
	dir := a.proc + "/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	fds, _ := d.Readdirnames(-1)
	var buf [64]byte
	for _, fd := range fds {
		n, err := unix.Readlink(dir+"/"+fd, buf[:])
		if err != nil {
			continue
		}
		if ino, ok := socketInode(buf[:n]); ok && ino == inode {
			return true
		}
	}
	return false
}

// exe returns the executable's path, believed only when the process shares
// the sidecar's mount namespace (or PID 1's, whose paths are resolved
// through /proc/1/root: systemd's sandboxing gives the sidecar a mount
// namespace of its own) and the file it runs is the one at that path in
// that namespace (same device and inode: a user namespace with a bind
// mount can make /proc/PID/exe print any path), and its hash when wanted.
func (a *Attestor) exe(dir string) (path, sum string) {
	var ns unix.Stat_t
	if unix.Stat(dir+"/ns/mnt", &ns) != nil {
		return "", ""
	}
	resolveIn := ""
	switch ns.Ino {
	case a.mntNS:
	case a.hostNS:
		resolveIn = a.proc + "/1/root"
	default:
		return "", ""
	}
	target, err := os.Readlink(dir + "/exe")
	if err != nil || strings.HasSuffix(target, " (deleted)") || !strings.HasPrefix(target, "/") {
		return "", ""
	}
	f, err := os.Open(dir + "/exe")
	if err != nil {
		return "", ""
	}
	defer f.Close()
	var running, named unix.Stat_t
	if unix.Fstat(int(f.Fd()), &running) != nil || unix.Stat(resolveIn+target, &named) != nil {
		return "", ""
	}
	if running.Dev != named.Dev || running.Ino != named.Ino {
		return "", ""
	}
	if a.hash.Load() {
		sum = a.sha256(f, &running)
	}
	return target, sum
}

// sha256 hashes the opened executable, cached by device, inode, size, mtime
// and ctime: rewriting the file changes ctime even if mtime is put back.
func (a *Attestor) sha256(f *os.File, st *unix.Stat_t) string {
	k := fileKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim, ctime: st.Ctim}
	a.hashMu.Lock()
	sum, ok := a.hashes[k]
	a.hashMu.Unlock()
	if ok {
		return sum
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	var after unix.Stat_t
	if unix.Fstat(int(f.Fd()), &after) != nil || after.Ctim != st.Ctim || after.Size != st.Size {
		return "" // changed while hashed
	}
	sum = hex.EncodeToString(h.Sum(nil))
	a.hashMu.Lock()
	if len(a.hashes) >= 4096 {
		clear(a.hashes)
	}
	a.hashes[k] = sum
	a.hashMu.Unlock()
	return sum
}

// exited reports whether the process of pidfd has exited: a pidfd polls
// readable then. (Signal 0 would need CAP_KILL for other users' processes.)
func exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n != 0
	}
}
