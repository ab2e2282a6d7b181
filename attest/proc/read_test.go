//go:build linux

package proc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadSmallAt: files shorter and longer than one read come back whole.
func TestReadSmallAt(t *testing.T) {
	dir := t.TempDir()
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for _, n := range []int{0, 10, 2047, 2048, 4096, 10000, 70000} {
		want := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		if err := os.WriteFile(filepath.Join(dir, "f"), want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readSmallAt(dfd, "f")
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := readSmallAt(dfd, "missing"); err == nil {
		t.Fatal("a missing file was read")
	}
}

// TestFindFD: the socket is found at a recent fd, near one, or in the fd
// directory; not in a directory of more than maxFastFDs entries unless
// near a recent fd.
func TestFindFD(t *testing.T) {
	a := &Attestor{}
	mk := func(t *testing.T, fds map[int]string) int {
		t.Helper()
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		for fd, target := range fds {
			if err := os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(fd))); err != nil {
				t.Fatal(err)
			}
		}
		dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(dfd) })
		return dfd
	}
	recent := [hintFDs]int{10, 20, 10, -1, -1, -1, -1, -1}
	for _, tc := range []struct {
		name  string
		fd    int
		other int // other fds open
		found bool
	}{
		{"at a recent fd", 20, 5, true},
		{"near a recent fd", 27, 5, true},
		{"below a recent fd", 3, 5, true},
		{"elsewhere", 400, 5, true},
		{"elsewhere among too many fds", 5000, maxFastFDs, false},
		{"near a recent fd among too many fds", 12, maxFastFDs, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds := map[int]string{tc.fd: "socket:[777]"}
			for i := range tc.other {
				if fd := 100 + i; fd != tc.fd {
					fds[fd] = "socket:[1]"
				}
			}
			h := hint{fds: recent}
			fd, ok, err := a.findFD(mk(t, fds), &h, 777)
			if err != nil || ok != tc.found || (ok && fd != tc.fd) {
				t.Fatalf("got fd %d, %v; want %d, %v", fd, ok, tc.fd, tc.found)
			}
		})
	}
}

// TestFastPathShares: a uid past its share of the fast path's slots, or
// one finding every slot taken for longer than the wait, goes to the scan
// (fastAttest answers nil) instead of queueing behind other uids' work.
func TestFastPathShares(t *testing.T) {
	a := &Attestor{proc: t.TempDir(), wait: time.Millisecond, fastSem: make(chan struct{}, maxFast), inFast: map[uint32]int{},
		hints: map[uint32]*[maxHints]hint{}}
	h := &[maxHints]hint{{pid: 1 << 30, fds: [hintFDs]int{3, -1, -1, -1, -1, -1, -1, -1}}}
	a.hints[1000], a.hints[2000] = h, h
	a.inFast[1000] = maxFastPerUID
	if p := a.fastAttest(1000, 42); p != nil {
		t.Fatalf("a uid past its share was answered by the fast path: %+v", p)
	}
	if len(a.fastSem) != 0 || a.inFast[1000] != maxFastPerUID {
		t.Fatalf("a refused fast path took a slot (%d) or changed the share (%d)", len(a.fastSem), a.inFast[1000])
	}
	for range maxFast {
		a.fastSem <- struct{}{}
	}
	if p := a.fastAttest(2000, 42); p != nil {
		t.Fatalf("answered with every slot taken: %+v", p)
	}
	if _, ok := a.inFast[2000]; ok {
		t.Fatal("a timed-out fast path left its share counted")
	}
	if p := a.fastAttest(3000, 42); p != nil || len(a.inFast) != 1 {
		t.Fatalf("a uid without hints took the fast path: %+v, %v", p, a.inFast)
	}
}

// TestPins: at most maxPins processes stay pinned, the least recently
// used is let go first, and a pin let go while a fast path uses it keeps
// its descriptor until that fast path releases it (a closed descriptor's
// number could be reused by another open, and read as the wrong process).
func TestPins(t *testing.T) {
	a := &Attestor{proc: t.TempDir(), pins: map[int]*pin{}}
	for pid := 1; pid <= maxPins+1; pid++ {
		if err := os.Mkdir(filepath.Join(a.proc, strconv.Itoa(pid)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	open := func(fd int) bool { _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); return err == nil }
	first, opened, err := a.acquire(1)
	if err != nil || !opened {
		t.Fatalf("acquire: %v, opened %v", err, opened)
	}
	for pid := 2; pid <= maxPins; pid++ {
		pn, _, err := a.acquire(pid)
		if err != nil {
			t.Fatal(err)
		}
		a.release(pn)
	}
	again, opened, _ := a.acquire(2) // now more recently used than 3…
	if opened || again != a.pins[2] {
		t.Fatal("a pinned pid was opened again")
	}
	a.release(again)
	if _, _, err := a.acquire(maxPins + 1); err != nil { // evicts pid 1, the least recently used
		t.Fatal(err)
	}
	if len(a.pins) != maxPins || a.pins[1] != nil || a.pins[2] == nil {
		t.Fatalf("%d pins, pid 1 pinned %v, pid 2 pinned %v; want %d, false, true", len(a.pins), a.pins[1] != nil, a.pins[2] != nil, maxPins)
	}
	if !open(first.dfd) {
		t.Fatal("the evicted pin's descriptor was closed while in use")
	}
	a.release(first)
	if open(first.dfd) {
		t.Fatal("the evicted pin's descriptor outlived its last use")
	}
	pn := a.pins[3]
	a.unpin(pn)
	if a.pins[3] != nil || open(pn.dfd) {
		t.Fatal("an unpinned process stayed pinned")
	}
}

// TestClosedHints: a connection closed on the sidecar's side marks its fd
// in its holder's hint, the lowest such fd is tried first, and a socket
// found at an fd clears the mark; an unknown inode or uid changes nothing.
func TestClosedHints(t *testing.T) {
	a := &Attestor{hints: map[uint32]*[maxHints]hint{}}
	a.remember(1000, holder{pid: 7, fd: 12}, 112)
	a.remember(1000, holder{pid: 7, fd: 9}, 109)
	a.remember(1000, holder{pid: 7, fd: 15}, 115)
	a.remember(1000, holder{pid: 8, fd: 4}, 104)
	hint7 := func() *hint {
		for i := range a.hints[1000] {
			if a.hints[1000][i].pid == 7 {
				return &a.hints[1000][i]
			}
		}
		t.Fatal("pid 7 is not hinted")
		return nil
	}
	if fd := hint7().freed(-1); fd != -1 {
		t.Fatalf("freed fd %d before any close", fd)
	}
	a.Closed(1000, 115)
	a.Closed(1000, 112)
	a.Closed(1000, 999) // not attested
	a.Closed(2000, 109) // another uid's
	if fd := hint7().freed(-1); fd != 12 {
		t.Fatalf("freed fd %d, want 12 (the lowest closed)", fd)
	}
	if fd := hint7().freed(12); fd != 15 {
		t.Fatalf("freed fd after 12: %d, want 15", fd)
	}
	if fd := hint7().freed(15); fd != -1 {
		t.Fatalf("freed fd after 15: %d, want none", fd)
	}
	a.remember(1000, holder{pid: 7, fd: 12}, 212) // the new socket took it
	if fd := hint7().freed(-1); fd != 15 {
		t.Fatalf("freed fd %d after fd 12 was taken again, want 15", fd)
	}
	if h := a.hints[1000][1]; h.pid != 8 || h.fds[0] != 4 || h.closed[0] {
		t.Fatalf("pid 8's hint changed: %+v", h)
	}
	// findFD tries the freed fd, and finds a socket elsewhere all the same.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "fd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for fd, target := range map[int]string{15: "socket:[315]", 40: "socket:[340]"} {
		if err := os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(fd))); err != nil {
			t.Fatal(err)
		}
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for _, tc := range []struct {
		ino uint64
		fd  int
	}{{315, 15}, {340, 40}} {
		if fd, ok, err := a.findFD(dfd, hint7(), tc.ino); err != nil || !ok || fd != tc.fd {
			t.Fatalf("socket %d: fd %d, %v, %v; want fd %d", tc.ino, fd, ok, err, tc.fd)
		}
	}
}
