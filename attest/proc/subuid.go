//go:build linux

package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultSubUIDFile lists the users' subordinate uid ranges (subuid(5)).
const DefaultSubUIDFile = "/etc/subuid"

// Bounds of the subordinate-uid file: it is the system's, but read by a
// daemon that must not be made to spend without limit.
const (
	maxSubUIDFile  = 1 << 20
	subUIDRecheck  = 10 * time.Second
	syntheticOwner = uint64(1) << 32 // owners named by a user name that does not resolve
)

// subRange is one line of the subordinate-uid file: uids start to
// start+count-1 belong to owner.
type subRange struct {
	start, end uint64 // end exclusive
	owner      uint64
	reach      uint64 // the largest end of this range and all before it (the walk's stop)
}

// subUIDs maps a uid to the user whose subordinate range holds it, so that
// the uids a user holds through newuidmap (65 536 by default) share that
// user's turn at the scans instead of each having one. The file is re-read
// when it changes, looked at no more than every subUIDRecheck.
type subUIDs struct {
	file string // "" = none

	mu      sync.Mutex
	checked time.Time
	stamp   fileStamp
	ranges  []subRange // sorted by start
	bad     []string   // lines skipped at the last read
}

// fileStamp tells a changed file from an unchanged one.
type fileStamp struct {
	ino, size uint64
	mtime     int64
}

func newSubUIDs(file string) *subUIDs {
	s := &subUIDs{file: file}
	if file != "" {
		s.refresh(time.Now())
	}
	return s
}

// owner is the turn uid takes its scans in: the owner of the subordinate
// range holding it (as a uid, or a synthetic key for a name that does not
// resolve), else uid itself. System uids are always their own: a range
// over them is a mistake that must not let a user queue services' scans.
func (s *subUIDs) owner(uid uint32, now time.Time) uint64 {
	if s.file == "" || systemUID(uid) {
		return uint64(uid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.checked) >= subUIDRecheck {
		s.refreshLocked(now)
	}
	rs := s.ranges
	i := sort.Search(len(rs), func(i int) bool { return rs[i].start > uint64(uid) })
	// Ranges may overlap: the last one starting at or below uid that
	// holds it, else its own.
	for j := i - 1; j >= 0 && uint64(uid) < rs[j].reach; j-- {
		if uint64(uid) < rs[j].end {
			return rs[j].owner
		}
	}
	return uint64(uid)
}

func (s *subUIDs) refresh(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(now)
}

// refreshLocked re-reads the file if it changed. A missing file means no
// ranges; a file that cannot be read keeps the ranges it had.
func (s *subUIDs) refreshLocked(now time.Time) {
	s.checked = now
	f, err := os.Open(s.file)
	if err != nil {
		if os.IsNotExist(err) {
			s.ranges, s.stamp, s.bad = nil, fileStamp{}, nil
		}
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return
	}
	stamp := fileStamp{size: uint64(st.Size()), mtime: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		stamp.ino = sys.Ino
	}
	if stamp == s.stamp && s.stamp != (fileStamp{}) {
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSubUIDFile+1))
	if err != nil {
		return
	}
	if len(data) > maxSubUIDFile {
		s.bad = []string{fmt.Sprintf("%s is larger than %d bytes: not read", s.file, maxSubUIDFile)}
		return
	}
	s.ranges, s.bad = parseSubUIDs(data, lookupUID)
	s.stamp = stamp
}

// warnings are the lines the last read skipped.
func (s *subUIDs) warnings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

// lookupUID resolves a user name of the subordinate-uid file.
func lookupUID(name string) (uint32, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(n), err == nil
}

// parseSubUIDs parses subuid(5): "owner:start:count" per line, owner a
// user name or uid. Blank lines and lines starting with "#" are skipped;
// malformed ones are skipped and reported. An owner name that does not
// resolve still groups its ranges, under a key no uid has.
func parseSubUIDs(data []byte, lookup func(string) (uint32, bool)) ([]subRange, []string) {
	var out []subRange
	var bad []string
	names := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxSubUIDFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || f[0] == "" {
			bad = append(bad, fmt.Sprintf("subordinate uid file, line %d: not owner:start:count; skipped", n))
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			bad = append(bad, fmt.Sprintf("subordinate uid file, line %d: start and count must be numbers, count above 0; skipped", n))
			continue
		}
		owner, ok := names[f[0]]
		if !ok {
			if uid, err := strconv.ParseUint(f[0], 10, 32); err == nil {
				owner = uid
			} else if uid, found := lookup(f[0]); found {
				owner = uint64(uid)
			} else {
				owner = syntheticOwner + uint64(len(names))
			}
			names[f[0]] = owner
		}
		out = append(out, subRange{start: start, end: start + count, owner: owner})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start < out[j].start })
	var reach uint64
	for i := range out {
		reach = max(reach, out[i].end)
		out[i].reach = reach
	}
	return out, bad
}
