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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sys/unix"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/internal/clock"
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
	// ExeMatched says whether some client's match or template reads the
	// executable (exe, exe_sha256, .Exe): then every attestation scans the
	// uid's processes for all holders of the socket. Otherwise a new
	// connection is first looked for in the processes that held the uid's
	// recent sockets (see fastAttest), which is sound for the
	// cgroup-derived attributes only.
	ExeMatched bool
	// MaxScans bounds the /proc scans running at once (0 = 2); Wait bounds
	// how long an attestation waits for one (0 = 2s).
	MaxScans int
	Wait     time.Duration
	// Outcome, when set, counts each attestation's outcome.
	Outcome func(outcome string)
	// Clock dates the fast path's cgroup reads (nil: the real clock).
	Clock clock.Clock
	// SubUIDFile lists users' subordinate uid ranges (subuid(5); "" =
	// DefaultSubUIDFile, "-" = none): a uid in a user's range scans in
	// that user's turn, so a user holding 65 536 uids through newuidmap
	// has one turn at the scans like any other user, not 65 536.
	SubUIDFile string
}

// Attestor finds and describes the process behind a client socket.
type Attestor struct {
	proc    string
	hash    atomic.Bool
	exeOn   atomic.Bool // some client reads the executable: no fast path
	wait    time.Duration
	outcome func(string)
	root    string // systemd's root cgroup
	mntNS   uint64 // the sidecar's mount namespace inode
	hostNS  uint64 // PID 1's mount namespace inode (0 if unreadable)
	sem     chan struct{}
	// sysSem is one more scan slot, for system uids only (see systemUID):
	// users, who may hold uids by the thousand through subordinate uid
	// ranges, cannot keep system services' scans waiting.
	sysSem chan struct{}

	mu      sync.Mutex
	pending map[uint32]*scan           // per uid: the scan not started yet, which new lookups join
	hints   map[uint32]*[maxHints]hint // per uid: the holders of its latest attested sockets, latest first
	fastSem chan struct{}              // bounds the fast paths running at once
	inFast  map[uint32]int             // per uid: its fast paths running or waiting
	pins    map[int]*pin               // per hinted pid: its process, pinned (see pin)
	useSeq  uint64                     // orders pins by last use, for eviction
	clock   clock.Clock

	// userHints counts the entries of hints that are not system uids'
	// (systemUID), under mu: only those are forgotten when they reach
	// maxHintUIDs.
	userHints int

	// hashes caches executables' digests (least recently used evicted:
	// another user's churn of files it owns cannot flush a trusted
	// binary's entry while that binary's callers keep using it); hashing
	// is bounded: hashSem slots at once, one per file owner (inHash), and
	// one hash per file however many callers ask (hashing).
	hashes  *lru.Cache[fileKey, string]
	hashSem chan struct{}
	hashMu  sync.Mutex
	inHash  map[uint32]*hashCall
	hashing map[fileKey]*hashCall
	maxHash int64 // the largest executable hashed (bytes)

	// turns: per owner (a uid, or the user whose subordinate range holds
	// it: owners), the token of its one scan at a time, so one user's
	// flood cannot hold every slot nor queue for them more than once.
	// Under mu.
	turns  map[uint64]*turn
	owners *subUIDs
	// queued: per owner, its scans made and not yet started (under mu),
	// at most maxQueuedPerOwner: each is a goroutine, and a user with
	// 65 536 uids must not make 65 536 of them at once.
	queued map[uint64]int

	// Scans counts /proc scans run, FastHits the attestations answered by
	// the fast path (bench and tests read them).
	Scans, FastHits atomic.Int64
}

type scan struct {
	done    chan struct{}
	owner   uint64              // whose turn it takes (subUIDs.owner)
	holders map[uint64][]holder // socket inode -> processes holding it
	err     error
}

// turn is one owner's scan token, with the number of scans holding or
// waiting for it (the map entry goes when none does).
type turn struct {
	ch   chan struct{}
	refs int
}

// holder is a process holding a socket, and the fd it holds it as.
type holder struct{ pid, fd int }

// pin is a hinted process held across attestations by a descriptor of its
// /proc/PID directory, with the cgroup-derived attributes last read
// through it. The descriptor stays the process's it was opened for: once
// that process has exited, nothing resolves through it any more (a PID
// reused later is another directory), so whatever is found through it is
// that very process's. It saves the fast path the open of /proc/PID and,
// for cgroupTTL, the read of /proc/PID/cgroup — the two costliest of its
// system calls. Fields other than pid and dfd are guarded by
// Attestor.mu; dfd is closed when the last reference goes.
type pin struct {
	pid, dfd int
	refs     int    // the pins map's, plus one per fast path using it
	used     uint64 // Attestor.useSeq at the last use
	// attrs are the cgroup and units read at read (zero: not yet).
	attrs cgroupAttrs
	read  time.Time
}

// cgroupAttrs are a process's attributes derived from its cgroup.
type cgroupAttrs struct{ cgroup, unit, userUnit string }

// hint is a process that held some of a uid's attested sockets, and the
// fds it held the latest ones as, latest first (-1: none), with each one's
// socket inode and whether that connection has closed since (Closed). A
// process's new sockets take the lowest free fd, which cycles through a
// few numbers (a hole below long-lived fds, or just above them): the
// lowest fd whose connection closed is where its next socket most likely
// is.
type hint struct {
	pid    int
	fds    [hintFDs]int
	inos   [hintFDs]uint64
	closed [hintFDs]bool
}

// add makes fd, now socket ino, the latest of h's fds (they stay
// distinct).
func (h *hint) add(fd int, ino uint64) {
	i := 0
	for i < hintFDs-1 && h.fds[i] != fd && h.fds[i] >= 0 {
		i++
	}
	copy(h.fds[1:i+1], h.fds[:i])
	copy(h.inos[1:i+1], h.inos[:i])
	copy(h.closed[1:i+1], h.closed[:i])
	h.fds[0], h.inos[0], h.closed[0] = fd, ino, false
}

// freed returns the next lowest of h's fds above after whose connection
// has closed, -1 if none: freed(-1) is the lowest.
func (h *hint) freed(after int) int {
	low := -1
	for i, fd := range h.fds {
		if fd > after && h.closed[i] && (low < 0 || fd < low) {
			low = fd
		}
	}
	return low
}

const (
	// maxHints is how many recent holders are remembered per uid.
	maxHints = 4
	// hintFDs is how many fds are remembered per hinted process.
	hintFDs = 8
	// maxHintUIDs bounds the user uids remembered (then those are all
	// forgotten). System uids' hints are never forgotten for room: a user
	// with a subordinate uid range can attest from 65 536 uids, and must
	// not thereby send every service's next connection to the scan. Their
	// number is bounded by systemUID's ranges (5 336 uids).
	maxHintUIDs = 4096
	// maxFastFDs bounds the fds the fast path reads per hinted process
	// when the socket is not near a hinted fd (a scan reads them all, and
	// every other process's of the uid); a process with more is found by
	// the (bounded, coalesced) scan.
	maxFastFDs = 4096
	// fdWindow is how far from the hinted fds the fast path tries fds
	// before reading the fd directory.
	fdWindow = 8
	// maxFast bounds the fast paths running at once; more wait for one to
	// finish, so a connection flood buys at most that many at a time.
	maxFast = 8
	// maxFastPerUID is one uid's share of those.
	maxFastPerUID = 4
	// maxPins bounds the processes pinned across attestations (each holds
	// one descriptor); the least recently used is let go past it.
	maxPins = 128
	// cgroupTTL is how long the fast path believes a pinned process's
	// cgroup as last read. Only a move between cgroups changes it, and
	// moving a process out of its unit takes root (the owner of a
	// delegated subtree moves within its unit, which the units do not
	// see); what is believed is what the process was in at most this long
	// ago, while it was holding the uid's sockets.
	cgroupTTL = time.Second
	// maxHashBytes is the largest executable hashed: a larger one has no
	// exe_sha256 (its conditions fail closed). A user can make a file of
	// any size for free (a sparse tail after the ELF image still runs),
	// and each chmod gives it a new cache key.
	maxHashBytes = 512 << 20
	// maxHashes bounds the executables hashed at once.
	maxHashes = 2
)

// hashCall is one hash in flight, which callers of the same file share.
type hashCall struct {
	done chan struct{}
	sum  string
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
	a := &Attestor{proc: "/proc", wait: opts.Wait, outcome: opts.Outcome, pending: map[uint32]*scan{},
		turns: map[uint64]*turn{}, queued: map[uint64]int{}, hashSem: make(chan struct{}, maxHashes), inHash: map[uint32]*hashCall{},
		hashing: map[fileKey]*hashCall{}, maxHash: maxHashBytes,
		hints: map[uint32]*[maxHints]hint{}, fastSem: make(chan struct{}, maxFast), inFast: map[uint32]int{},
		pins: map[int]*pin{}, clock: opts.Clock}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	if a.wait == 0 {
		a.wait = 2 * time.Second
	}
	n := opts.MaxScans
	if n <= 0 {
		n = 2
	}
	a.sem = make(chan struct{}, n)
	a.sysSem = make(chan struct{}, 1)
	switch opts.SubUIDFile {
	case "":
		a.owners = newSubUIDs(DefaultSubUIDFile)
	case "-":
		a.owners = newSubUIDs("")
	default:
		a.owners = newSubUIDs(opts.SubUIDFile)
	}
	a.hashes, _ = lru.New[fileKey, string](4096)
	a.hash.Store(opts.Hash)
	a.exeOn.Store(opts.ExeMatched)
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
	return a, append(a.warnings(), a.owners.warnings()...), nil
}

// SetHash turns hashing of executables on or off (a reload added or
// removed the last exe_sha256 condition).
func (a *Attestor) SetHash(on bool) { a.hash.Store(on) }

// SetExeMatched says whether some client's match or template reads the
// executable (a reload added or removed the last one): while one does,
// every attestation scans for all holders of the socket.
func (a *Attestor) SetExeMatched(on bool) { a.exeOn.Store(on) }

// Hashing reports whether executables are hashed (SetHash).
func (a *Attestor) Hashing() bool { return a.hash.Load() }

// ExeMatched reports whether the fast path is off (SetExeMatched).
func (a *Attestor) ExeMatched() bool { return a.exeOn.Load() }

// Root is systemd's root cgroup as the sidecar sees it.
func (a *Attestor) Root() string { return a.root }

func (a *Attestor) warnings() []string {
	var w []string
	if !InInitialPIDNamespace(a.proc) {
		w = append(w, "the sidecar runs in a PID namespace of its own: processes outside it are invisible, so systemd_unit/cgroup/exe conditions fail closed for them")
	}
	if hidden, err := HidesProcesses(a.proc); err == nil && hidden {
		w = append(w, "/proc is mounted with hidepid (or ProtectProc=invisible): other users' processes are hidden, so systemd_unit/cgroup/exe conditions fail closed for them")
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
	if !a.exeOn.Load() {
		if p := a.fastAttest(uid, inode); p != nil {
			return p, nil
		}
	}
	hs, err := a.holders(uid, inode)
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, ErrGone
	}
	var first *agent.Process
	var firstAt holder
	for _, h := range hs {
		p, err := a.byPID(h.pid, inode, h.fd)
		if err != nil {
			if errors.Is(err, ErrGone) && len(hs) > 1 {
				continue // one of several holders exited
			}
			return nil, err
		}
		if first == nil {
			first, firstAt = p, h
			continue
		}
		if first.Unit != p.Unit || first.UserUnit != p.UserUnit || first.Cgroup != p.Cgroup || first.Exe != p.Exe || first.ExeSHA256 != p.ExeSHA256 {
			return nil, fmt.Errorf("pids %d and %d: %w", first.PID, p.PID, ErrAmbiguous)
		}
	}
	if first == nil {
		return nil, ErrGone
	}
	a.remember(uid, firstAt, inode)
	return first, nil
}

// fastAttest looks for the process holding socket inode among the ones
// that held uid's latest attested sockets (a service's next connection
// usually comes from the same process, often on the same fd number, the
// lowest free one), and describes the first that holds it; nil if none
// does, and the caller scans.
//
// It finds a holder, not all of them, so it describes only what another
// holder cannot make differ without the found process's cooperation or
// privilege: the cgroup and the units derived from it. A fork inherits its
// parent's cgroup; sharing a socket across cgroups then needs a cgroup
// move (which whoever may make could make for the other process itself),
// passing the fd over SCM_RIGHTS (the found process's own doing) or
// pidfd_getfd (which needs ptrace rights over it, i.e. its control). The
// executable is not of that kind — fork, exec the matched binary with the
// socket inherited, let the parent write on it — so Exe and ExeSHA256 are
// left unknown here, and the fast path is off while a client reads them.
// (Even the scan cannot see a holder that parked its copy in flight over
// SCM_RIGHTS meanwhile: Exe names a holder, not the writer of the request,
// which is why check-config warns about a client matched by exe alone.)
//
// PID reuse is safe as on the scan path: the process is pinned (by its
// /proc/PID directory, see fastPID), checked to hold this very socket
// before and after its attributes are read, and those are read fresh; a
// hint only says where to look first.
func (a *Attestor) fastAttest(uid uint32, inode uint64) *agent.Process {
	if !a.enterFast(uid) {
		return nil
	}
	defer a.leaveFast(uid)
	// The hints are read one at a time, not copied whole: this runs at
	// the bottom of a request's call chain, where a larger frame makes
	// every new connection's goroutine grow its stack. A hint reordered
	// meanwhile may be tried twice or missed; it is only where to look
	// first, and a miss goes to the scan.
	for i := range maxHints {
		h, ok := a.hintAt(uid, i)
		if !ok {
			break
		}
		p, fd, err := a.fastPID(uid, h, inode)
		if errors.Is(err, ErrGone) {
			a.forget(uid, h.pid)
		}
		if err != nil || p == nil {
			continue
		}
		a.remember(uid, holder{pid: h.pid, fd: fd}, inode)
		a.FastHits.Add(1)
		return p
	}
	return nil
}

// enterFast takes one of the fast path's slots for uid, false when uid
// has no hints or no slot is to be had.
//
// One uid gets at most maxFastPerUID of the maxFast slots: a user flooding
// connections from processes with huge fd tables must not hold every slot
// while trusted callers of other uids wait. Past its share, or with no
// hint at all, a lookup goes to the scan, which is coalesced per uid and
// bounded in time.
func (a *Attestor) enterFast(uid uint32) bool {
	a.mu.Lock()
	if a.hints[uid] == nil || a.inFast[uid] >= maxFastPerUID {
		a.mu.Unlock()
		return false
	}
	a.inFast[uid]++
	a.mu.Unlock()
	// Waiting for a slot beats falling back to a scan (a fast path's work
	// is bounded and short, a scan's is neither), but not for ever. A free
	// slot is taken without a timer.
	select {
	case a.fastSem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.fastSem <- struct{}{}:
		return true
	case <-t.C:
		a.leaveShare(uid)
		return false
	}
}

// leaveFast gives back the slot and share enterFast took.
func (a *Attestor) leaveFast(uid uint32) {
	<-a.fastSem
	a.leaveShare(uid)
}

func (a *Attestor) leaveShare(uid uint32) {
	a.mu.Lock()
	if a.inFast[uid]--; a.inFast[uid] == 0 {
		delete(a.inFast, uid)
	}
	a.mu.Unlock()
}

// hintAt is uid's i-th latest holder, false past the last.
func (a *Attestor) hintAt(uid uint32, i int) (hint, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	hs := a.hints[uid]
	if hs == nil || hs[i].pid == 0 {
		return hint{}, false
	}
	return hs[i], true
}

// fastPID describes hinted process h if it is uid's and holds socket
// inode (p nil otherwise); fd is the one it holds it as. ErrGone: the
// process no longer exists or is not uid's.
//
// The process is pinned by a descriptor of its /proc/PID directory (see
// pin), and everything is read through it, so the socket found through it
// is held by that very process, alive then. A pin whose process has
// exited is let go and the pid opened afresh: the pid may be a new
// process of uid's now, which the hint still points at.
func (a *Attestor) fastPID(uid uint32, h hint, inode uint64) (p *agent.Process, fd int, err error) {
	for try := 0; ; try++ {
		pn, opened, err := a.acquire(h.pid)
		if err != nil {
			return nil, 0, ErrGone
		}
		p, fd, err := a.pinned(pn, uid, h, inode)
		a.release(pn)
		if errors.Is(err, errExited) || (errors.Is(err, ErrGone) && !opened) {
			// Exited, or not uid's (as an exited process reads): the pid
			// may be a new process of uid's now, which the hint means.
			a.unpin(pn)
			if !opened && try == 0 {
				continue // once: another fast path's fresh pin is as good as ours
			}
			err = ErrGone
		}
		return p, fd, err
	}
}

// errExited: a pinned process has exited.
var errExited = errors.New("the pinned process exited")

// pinned is fastPID on the pinned process pn. The cgroup is read through
// the pin unless read there within cgroupTTL; a fresh read is followed by
// a check that the socket is still held (a cached one was read before the
// socket was found, so that check comes after it anyway).
func (a *Attestor) pinned(pn *pin, uid uint32, h hint, inode uint64) (p *agent.Process, fd int, err error) {
	var st unix.Stat_t
	if unix.Fstat(pn.dfd, &st) != nil || st.Uid != uid {
		// Not uid's (any more): as the scan, only uid's processes count.
		// An exited process reads as root's here.
		return nil, 0, ErrGone
	}
	fd, ok, err := a.findFD(pn.dfd, &h, inode)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, 0, nil
	}
	p = &agent.Process{PID: h.pid}
	now := a.clock.Now()
	a.mu.Lock()
	cached, attrs := !pn.read.IsZero() && now.Sub(pn.read) < cgroupTTL && !now.Before(pn.read), pn.attrs
	a.mu.Unlock()
	if cached {
		p.Cgroup, p.Unit, p.UserUnit = attrs.cgroup, attrs.unit, attrs.userUnit
		return p, fd, nil
	}
	data, err := readSmallAt(pn.dfd, "cgroup")
	if err == nil {
		a.cgroupFrom(data, p)
	}
	if !fdIsAt(pn.dfd, fd, inode) {
		return nil, 0, nil // closed, passed on, or the process exited
	}
	if err == nil {
		a.mu.Lock()
		pn.attrs = cgroupAttrs{cgroup: p.Cgroup, unit: p.Unit, userUnit: p.UserUnit}
		pn.read = now
		a.mu.Unlock()
	}
	return p, fd, nil
}

// acquire returns pid's pin, opening /proc/PID for it if there is none
// (opened), with a reference the caller releases.
func (a *Attestor) acquire(pid int) (pn *pin, opened bool, err error) {
	a.mu.Lock()
	if pn := a.pins[pid]; pn != nil {
		pn.refs++
		a.useSeq++
		pn.used = a.useSeq
		a.mu.Unlock()
		return pn, false, nil
	}
	a.mu.Unlock()
	dfd, err := unix.Open(a.proc+"/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if pn := a.pins[pid]; pn != nil { // another fast path pinned it meanwhile
		unix.Close(dfd)
		pn.refs++
		a.useSeq++
		pn.used = a.useSeq
		return pn, false, nil
	}
	if len(a.pins) >= maxPins {
		var lru *pin
		for _, pn := range a.pins {
			if lru == nil || pn.used < lru.used {
				lru = pn
			}
		}
		a.dropLocked(lru)
	}
	a.useSeq++
	pn = &pin{pid: pid, dfd: dfd, refs: 2, used: a.useSeq}
	a.pins[pid] = pn
	return pn, true, nil
}

// release gives back a reference acquire returned.
func (a *Attestor) release(pn *pin) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if pn.refs--; pn.refs == 0 {
		unix.Close(pn.dfd)
	}
}

// unpin lets pn go (its process exited): the pid is opened afresh next.
func (a *Attestor) unpin(pn *pin) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pins[pn.pid] == pn {
		a.dropLocked(pn)
	}
}

// dropLocked removes pn from the pins (a.mu held), closing its descriptor
// unless a fast path still uses it (the last release closes it then).
func (a *Attestor) dropLocked(pn *pin) {
	delete(a.pins, pn.pid)
	if pn.refs--; pn.refs == 0 {
		unix.Close(pn.dfd)
	}
}

// findFD returns the fd of socket inode of the process whose /proc/PID
// is open as dfd. A new socket takes the lowest free fd, so a process's
// next socket is usually at or near one of the fds of its latest ones
// (recent): fds around those are tried before the fd directory is read,
// and processes with more than maxFastFDs open files are left to the scan
// when the socket is not near. errExited: the process has exited (its fd
// directory no longer resolves).
func (a *Attestor) findFD(dfd int, h *hint, inode uint64) (int, bool, error) {
	// The fds whose connections closed first, lowest first: the kernel
	// gave the new socket the lowest free fd (unless some other file freed
	// a lower one), and other new sockets of the process may have taken
	// the lower ones already.
	for fd := h.freed(-1); fd >= 0; fd = h.freed(fd) {
		if fdIsAt(dfd, fd, inode) {
			return fd, true, nil
		}
	}
	recent := &h.fds
	// near reports whether fd is within the window of a recent fd before
	// recent[upto] (tried already; no bookkeeping, which would grow the
	// stack of every connection's goroutine).
	near := func(fd, window, upto int) bool {
		for _, r := range recent[:upto] {
			if r >= 0 && fd >= r-window && fd <= r+window {
				return true
			}
		}
		return false
	}
	// The recent fds oldest first: with several connections at a time,
	// the latest ones are likely still open, and the new socket took the
	// fd of one that closed. (A process with one connection at a time
	// reuses one fd, the only entry.)
	for i := hintFDs - 1; i >= 0; i-- {
		if r := recent[i]; r >= 0 && !h.closed[i] && !near(r, 0, i) && fdIsAt(dfd, r, inode) {
			return r, true, nil
		}
	}
	for i, r := range recent {
		if r < 0 || near(r, 0, i) {
			continue
		}
		for d := 1; d <= fdWindow; d++ {
			for _, fd := range [2]int{r + d, r - d} {
				if fd >= 0 && !near(fd, 0, hintFDs) && !near(fd, fdWindow, i) && fdIsAt(dfd, fd, inode) {
					return fd, true, nil
				}
			}
		}
	}
	fdd, err := unix.Openat(dfd, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return 0, false, errExited
	}
	if err != nil {
		return 0, false, nil
	}
	d := os.NewFile(uintptr(fdd), "fd")
	defer d.Close()
	fds, err := d.Readdirnames(maxFastFDs + 1)
	if err != nil || len(fds) > maxFastFDs {
		return 0, false, nil
	}
	for _, name := range fds {
		fd, err := strconv.Atoi(name)
		if err == nil && !near(fd, fdWindow, hintFDs) && fdIsAt(dfd, fd, inode) {
			return fd, true, nil
		}
	}
	return 0, false, nil
}

// fdIsAt reports whether fd of the process whose /proc/PID is open as dfd
// is socket inode.
func fdIsAt(dfd, fd int, inode uint64) bool {
	return linkIsSocket(dfd, "fd/"+strconv.Itoa(fd), inode)
}

// linkIsSocket reports whether the fd link at path (relative to dirfd, or
// absolute with unix.AT_FDCWD) is socket inode.
func linkIsSocket(dirfd int, path string, inode uint64) bool {
	var buf [64]byte
	n, err := unix.Readlinkat(dirfd, path, buf[:])
	if err != nil {
		return false
	}
	ino, ok := socketInode(buf[:n])
	return ok && ino == inode
}

// remember makes h, holding socket inode, the latest holder of uid's
// sockets.
func (a *Attestor) remember(uid uint32, h holder, inode uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	hs := a.hints[uid]
	if hs == nil {
		if !systemUID(uid) {
			if a.userHints >= maxHintUIDs {
				for u := range a.hints {
					if !systemUID(u) {
						delete(a.hints, u)
					}
				}
				a.userHints = 0
			}
			a.userHints++
		}
		hs = &[maxHints]hint{}
		a.hints[uid] = hs
	}
	i := 0
	for i < maxHints-1 && hs[i].pid != h.pid && hs[i].pid != 0 {
		i++
	}
	e := hs[i]
	if e.pid != h.pid {
		e = hint{pid: h.pid}
		for j := range e.fds {
			e.fds[j] = -1
		}
	}
	e.add(h.fd, inode)
	copy(hs[1:i+1], hs[:i]) // drops the oldest, or h's older entry
	hs[0] = e
}

// Closed tells the attestor that the connection of uid's socket inode,
// attested before, has closed on the sidecar's side: its holder most
// likely closed its end, freeing the fd its next socket takes. Only where
// to look first changes; what a socket's holder is is always read.
func (a *Attestor) Closed(uid uint32, inode uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	hs := a.hints[uid]
	if hs == nil {
		return
	}
	for i := range hs {
		for j, ino := range hs[i].inos {
			if ino == inode && hs[i].fds[j] >= 0 {
				hs[i].closed[j] = true
				return
			}
		}
	}
}

// forget drops a hinted pid that is gone (or not uid's any more).
func (a *Attestor) forget(uid uint32, pid int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	hs := a.hints[uid]
	if hs == nil {
		return
	}
	for i := range hs {
		if hs[i].pid == pid {
			copy(hs[i:], hs[i+1:])
			hs[maxHints-1] = hint{}
			return
		}
	}
}

// holders returns the pids of uid's processes that hold socket inode. The
// scan joins one not yet started for the same uid, so a flood of
// connections from one user costs one scan per batch; at most MaxScans run
// at once. A scan that started before the lookup is never joined: it may
// have passed the holder already.
func (a *Attestor) holders(uid uint32, inode uint64) ([]holder, error) {
	owner := a.owners.owner(uid, time.Now())
	a.mu.Lock()
	sc := a.pending[uid]
	if sc == nil {
		if a.queued[owner] >= maxQueuedPerOwner {
			a.mu.Unlock()
			return nil, errOwnerQueueFull
		}
		a.queued[owner]++
		sc = &scan{done: make(chan struct{}), owner: owner}
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

// maxQueuedPerOwner bounds one owner's scans waiting to start (one per
// uid: lookups of a uid join its waiting scan).
const maxQueuedPerOwner = 16

// errOwnerQueueFull: the uid's owner has maxQueuedPerOwner scans waiting
// already (its other uids').
var errOwnerQueueFull = fmt.Errorf("the user's uids have %d scans waiting already: %w", maxQueuedPerOwner, ErrBusy)

// errScanNotStarted: a scan did not get its owner's turn and a slot within
// the wait; its lookups have given up (or are about to), so it is dropped
// rather than run for nobody.
var errScanNotStarted = fmt.Errorf("no scan slot within the wait: %w", ErrBusy)

// run waits for uid's owner's turn, then for a slot, then scans. One turn
// per owner: the next scan of a uid (which every lookup of that uid
// meanwhile joins), or of another uid of the same user's subordinate
// range, waits for the turn, not in the slots' queue, so the slots' queue
// holds at most one scan per owner and another user's scan waits behind
// at most one of a flooding user's. A scan that has waited the whole wait
// without starting is dropped: nobody waits for it any more, and a flood
// must not leave a backlog of scans to run.
func (a *Attestor) run(uid uint32, sc *scan) {
	giveUp := time.NewTimer(a.wait)
	defer giveUp.Stop()
	owner := sc.owner
	tn := a.takeTurn(owner)
	defer a.leaveTurn(owner, tn)
	select {
	case tn.ch <- struct{}{}:
	case <-giveUp.C:
		a.drop(uid, sc)
		return
	}
	defer func() { <-tn.ch }()
	slot := a.sem
	if systemUID(uid) {
		select {
		case a.sem <- struct{}{}:
		case a.sysSem <- struct{}{}:
			slot = a.sysSem
		case <-giveUp.C:
			a.drop(uid, sc)
			return
		}
	} else {
		select {
		case a.sem <- struct{}{}:
		case <-giveUp.C:
			a.drop(uid, sc)
			return
		}
	}
	a.unqueue(uid, sc) // later lookups start a new scan
	a.Scans.Add(1)
	sc.holders, sc.err = a.scanUID(uid, a.clock.Now().Add(a.wait/2))
	<-slot
	close(sc.done)
}

// drop ends a scan that never started: its lookups get errScanNotStarted.
func (a *Attestor) drop(uid uint32, sc *scan) {
	a.unqueue(uid, sc)
	sc.err = errScanNotStarted
	close(sc.done)
}

// unqueue takes sc, starting or dropped, off uid's pending scan and its
// owner's count of waiting ones.
func (a *Attestor) unqueue(uid uint32, sc *scan) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending[uid] == sc {
		delete(a.pending, uid)
	}
	if a.queued[sc.owner]--; a.queued[sc.owner] <= 0 {
		delete(a.queued, sc.owner)
	}
}

// takeTurn is owner's turn, made if none of its scans holds or waits for
// it; leaveTurn lets go of it.
func (a *Attestor) takeTurn(owner uint64) *turn {
	a.mu.Lock()
	defer a.mu.Unlock()
	tn := a.turns[owner]
	if tn == nil {
		tn = &turn{ch: make(chan struct{}, 1)}
		a.turns[owner] = tn
	}
	tn.refs++
	return tn
}

func (a *Attestor) leaveTurn(owner uint64, tn *turn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if tn.refs--; tn.refs == 0 && a.turns[owner] == tn {
		delete(a.turns, owner)
	}
}

// systemUID reports whether uid is a system account's — below 1000
// (login.defs' UID_MIN on Debian and most distributions), or in systemd's
// DynamicUser range 61184–65519 — where services run, and which no user
// can create processes as, not even through subordinate uids (from 100000
// by default).
func systemUID(uid uint32) bool { return uid < 1000 || uid >= 61184 && uid <= 65519 }

// errScanTooLong: the uid's processes hold more fds than a scan reads in
// its time. Its slot goes to other uids' scans; the lookup fails closed.
var errScanTooLong = fmt.Errorf("the uid's processes hold too many fds to scan in time: %w", ErrBusy)

// scanUID maps the socket inodes held by uid's processes to their pids.
// It gives up at deadline: any user may open as many fds as its limits
// allow, in as many processes, and a scan holds one of a few slots.
func (a *Attestor) scanUID(uid uint32, deadline time.Time) (map[uint64][]holder, error) {
	d, err := os.Open(a.proc)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", a.proc, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", a.proc, err)
	}
	out := map[uint64][]holder{}
	var denied bool
	var buf [64]byte
	reads := 0
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
			if reads++; reads%256 == 0 && a.clock.Now().After(deadline) {
				return nil, errScanTooLong
			}
			n, err := unix.Readlink(dir+"/"+fd, buf[:])
			if err != nil {
				continue
			}
			if ino, ok := socketInode(buf[:n]); ok {
				fdn, _ := strconv.Atoi(fd)
				out[ino] = append(out[ino], holder{pid: pid, fd: fdn})
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
	return a.byPID(pid, inode, -1)
}

// byPID is ByPIDHolding with the fd the scan saw the socket as (-1: none),
// checked first: reading one fd is cheaper than the whole fd directory.
func (a *Attestor) byPID(pid int, inode uint64, fd int) (*agent.Process, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %v: %w", pid, err, ErrGone)
	}
	defer unix.Close(pidfd)
	if inode != 0 && !a.holds(pid, inode, fd) {
		return nil, fmt.Errorf("pid %d no longer holds the socket: %w", pid, ErrGone)
	}
	p := &agent.Process{PID: pid}
	dir := a.proc + "/" + strconv.Itoa(pid)
	a.cgroupOf(dir, p)
	p.Exe, p.ExeSHA256 = a.exe(dir)
	// The reads above are the process's only if it is still alive now (a
	// pid is not reused while its process exists) and still holds the socket.
	if exited(pidfd) {
		return nil, fmt.Errorf("pid %d exited during attestation: %w", pid, ErrGone)
	}
	if inode != 0 && !a.holds(pid, inode, fd) {
		return nil, fmt.Errorf("pid %d no longer holds the socket: %w", pid, ErrGone)
	}
	return p, nil
}

// cgroupOf fills p's cgroup and units from /proc/PID/cgroup (dir is
// /proc/PID).
func (a *Attestor) cgroupOf(dir string, p *agent.Process) {
	if data, err := os.ReadFile(dir + "/cgroup"); err == nil {
		a.cgroupFrom(data, p)
	}
}

// cgroupFrom fills p's cgroup and units from the contents of
// /proc/PID/cgroup; left "" when the path is not below systemd's root.
func (a *Attestor) cgroupFrom(data []byte, p *agent.Process) {
	if path, err := CgroupPath(data); err == nil {
		if rel, ok := Relative(path, a.root); ok {
			p.Cgroup = rel
			p.Unit, p.UserUnit = Units(rel)
		}
	}
}

// readSmallAt reads a /proc/PID file, name relative to dfd, with as few
// system calls as it takes: open, one read, close for a small file
// (os.ReadFile also stats it and reads again to see the end, which /proc
// makes costly on the fast path).
func readSmallAt(dfd int, name string) ([]byte, error) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		buf = buf[:len(buf)+n]
		if n == 0 || len(buf) < cap(buf)/2 {
			// /proc/PID/cgroup is generated whole and handed out as far
			// as the buffer goes: a read well short of it is the end.
			return buf, nil
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
	}
}

// holds reports whether pid has socket inode open, as fd when fd >= 0
// and it still is, else as any fd.
func (a *Attestor) holds(pid int, inode uint64, fd int) bool {
	dir := a.proc + "/" + strconv.Itoa(pid) + "/fd"
	if fd >= 0 && linkIsSocket(unix.AT_FDCWD, dir+"/"+strconv.Itoa(fd), inode) {
		return true
	}
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	fds, _ := d.Readdirnames(-1)
	for _, fd := range fds {
		if linkIsSocket(unix.AT_FDCWD, dir+"/"+fd, inode) {
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
// "" (unknown) for a file over maxHash, when no hash slot frees within
// the wait, or when the file changed while hashed. Callers of one file
// share one hash; a file owner's files are hashed one at a time, so a
// user churning its own files' ctime holds at most one of the slots.
func (a *Attestor) sha256(f *os.File, st *unix.Stat_t) string {
	k := fileKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim, ctime: st.Ctim}
	if sum, ok := a.hashes.Get(k); ok {
		return sum
	}
	if st.Size > a.maxHash {
		return ""
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	var c *hashCall
	for c == nil {
		a.hashMu.Lock()
		if same := a.hashing[k]; same != nil {
			a.hashMu.Unlock()
			select {
			case <-same.done:
				return same.sum
			case <-t.C:
				return ""
			}
		}
		if other := a.inHash[st.Uid]; other != nil {
			a.hashMu.Unlock()
			select { // the owner's other file first
			case <-other.done:
				continue
			case <-t.C:
				return ""
			}
		}
		c = &hashCall{done: make(chan struct{})}
		a.hashing[k], a.inHash[st.Uid] = c, c
		a.hashMu.Unlock()
	}
	defer func() {
		a.hashMu.Lock()
		delete(a.hashing, k)
		delete(a.inHash, st.Uid)
		a.hashMu.Unlock()
		close(c.done)
	}()
	select {
	case a.hashSem <- struct{}{}:
	case <-t.C:
		return ""
	}
	defer func() { <-a.hashSem }()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, a.maxHash+1)); err != nil {
		return ""
	}
	var after unix.Stat_t
	if unix.Fstat(int(f.Fd()), &after) != nil || after.Ctim != st.Ctim || after.Size != st.Size {
		return "" // changed while hashed
	}
	c.sum = hex.EncodeToString(h.Sum(nil))
	a.hashes.Add(k, c.sum)
	return c.sum
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
