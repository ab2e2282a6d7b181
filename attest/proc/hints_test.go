//go:build linux

package proc

import "testing"

// TestUserUIDsDoNotFlushSystemHints: a user attesting from thousands of
// uids (a subordinate uid range has 65 536) fills the hint table, and when
// it is full only user uids' hints are forgotten: a service's next
// connection still finds its process without a scan.
func TestUserUIDsDoNotFlushSystemHints(t *testing.T) {
	a, _, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	const service, dynamic = 998, 61500 // a system account's uid, a DynamicUser's
	a.remember(service, holder{pid: 1234, fd: 5}, 77)
	a.remember(dynamic, holder{pid: 1235, fd: 6}, 78)
	for u := uint32(100000); u < 100000+3*maxHintUIDs+7; u++ {
		a.remember(u, holder{pid: 4242, fd: 3}, 1)
	}
	for _, uid := range []uint32{service, dynamic} {
		if h, ok := a.hintAt(uid, 0); !ok || h.pid == 0 {
			t.Errorf("uid %d's hint was forgotten for the flood's room", uid)
		}
	}
	a.mu.Lock()
	n, users := len(a.hints), a.userHints
	a.mu.Unlock()
	if users > maxHintUIDs || n > maxHintUIDs+2 {
		t.Errorf("%d hints, %d of user uids: the table is not bounded at %d user uids", n, users, maxHintUIDs)
	}
}
