//go:build linux

package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSubUIDs(t *testing.T) {
	lookup := func(name string) (uint32, bool) {
		if name == "alice" {
			return 1000, true
		}
		return 0, false
	}
	data := "alice:100000:65536\n\n# a comment\n1001:165536:65536\nghost:300000:10\nbroken line\nbob:x:5\ncarol:400000:0\nghost:300020:10\n"
	rs, bad := parseSubUIDs([]byte(data), lookup)
	if len(bad) != 3 || !strings.Contains(bad[0], "line 6") || !strings.Contains(bad[1], "line 7") || !strings.Contains(bad[2], "line 8") {
		t.Errorf("skipped lines %q, want lines 6, 7 and 8", bad)
	}
	s := &subUIDs{file: "x", checked: time.Now(), ranges: rs}
	now := time.Now()
	for _, tc := range []struct {
		uid  uint32
		want uint64
	}{
		{100000, 1000}, {165535, 1000}, {165536, 1001}, {231071, 1001}, {231072, 231072},
		{1000, 1000}, {99999, 99999}, {4840, 4840},
		{300015, 300015},
		{500, 500}, // a system uid is always its own
	} {
		if got := s.owner(tc.uid, now); got != tc.want {
			t.Errorf("owner(%d) = %d, want %d", tc.uid, got, tc.want)
		}
	}
	// Overlapping ranges: the latest-starting one that holds the uid, and
	// a uid past a long early range still found in it.
	ov, _ := parseSubUIDs([]byte("1001:100000:100000\n1002:150000:10\n1003:500000:10\n"), lookup)
	so := &subUIDs{file: "x", checked: now, ranges: ov}
	for uid, want := range map[uint32]uint64{150005: 1002, 170000: 1001, 199999: 1001, 200000: 200000, 500005: 1003, 400000: 400000} {
		if got := so.owner(uid, now); got != want {
			t.Errorf("overlapping ranges: owner(%d) = %d, want %d", uid, got, want)
		}
	}
	// A name that does not resolve: its two ranges share one owner that
	// no uid is.
	if a, b := s.owner(300005, now), s.owner(300025, now); a != b || a < syntheticOwner {
		t.Errorf("unresolved owner's ranges: %d and %d", a, b)
	}
}

// The file is re-read when it changes (looked at no more than every
// subUIDRecheck); a file that goes away takes its ranges with it.
func TestSubUIDsReread(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(f, []byte("1000:100000:65536\n"), 0o644)
	s := newSubUIDs(f)
	now := time.Now()
	if got := s.owner(100001, now); got != 1000 {
		t.Fatalf("owner = %d, want 1000", got)
	}
	os.WriteFile(f, []byte("2000:100000:10\n1000:200000:65536\n"), 0o644)
	if got := s.owner(100001, now.Add(time.Second)); got != 1000 {
		t.Errorf("re-read before the recheck interval: owner = %d", got)
	}
	later := now.Add(subUIDRecheck)
	if got := s.owner(100001, later); got != 2000 {
		t.Errorf("after the change: owner = %d, want 2000", got)
	}
	os.Remove(f)
	if got := s.owner(100001, later.Add(subUIDRecheck)); got != 100001 {
		t.Errorf("after the file went: owner = %d, want its own", got)
	}
	none := newSubUIDs("")
	if got := none.owner(100001, now); got != 100001 {
		t.Errorf("no file: owner = %d", got)
	}
}

// An oversized file is not read, and says so.
func TestSubUIDsTooLarge(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(f, []byte(strings.Repeat("1000:100000:65536\n", maxSubUIDFile/18+1)), 0o644)
	s := newSubUIDs(f)
	if w := s.warnings(); len(w) != 1 || !strings.Contains(w[0], "larger than") {
		t.Errorf("warnings %q", w)
	}
	if got := s.owner(100001, time.Now()); got != 100001 {
		t.Errorf("owner = %d from a file not read", got)
	}
}
