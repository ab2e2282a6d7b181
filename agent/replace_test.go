package agent

import (
	"context"
	"testing"
	"time"
)

// An entry installed over another of the same session (the LRU replaces
// the value without calling onEvict) ends the one it replaces: marked gone,
// its deadline taken out of the queue (it held the entry there until the
// replaced session's expiry, and a renewal of a gone entry installs
// nothing), and the session renewed as often as one never replaced.
func TestInstallOverAnEntryEndsIt(t *testing.T) {
	f := newFixture(t, 100)
	first := mustCreds(t, f.a, alice, "app")
	var old *entry
	f.a.entries.Range(func(_, v any) bool {
		if e := v.(*entry); e.credsNow() == first {
			old = e
		}
		return true
	})
	if old == nil {
		t.Fatal("the cached entry does not hold the credentials handed out")
	}
	next := &entry{key: old.key, role: old.role, client: old.client, session: old.session, tags: old.tags}
	creds, err := f.src.Retrieve(context.Background(), Request{RoleARN: old.role.cfg.ARN, SessionName: old.session, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f.a.install(next, creds)

	f.a.due.mu.Lock()
	armed := old.dueIdx != 0 || old.dueSeq != 0
	f.a.due.mu.Unlock()
	old.mu.Lock()
	gone := old.gone
	old.mu.Unlock()
	if armed || !gone {
		t.Fatalf("the replaced entry: deadline armed %v, gone %v; want no deadline, gone", armed, gone)
	}

	// Three hours, asked every minute: as many renewals as a session
	// never replaced has (control), and the replaced entry never cached
	// again.
	loop := func(f *fixture, old *entry) int64 {
		calls := f.src.calls.Load()
		for end := t0.Add(3 * time.Hour); f.clk.Now().Before(end); f.clk.Advance(time.Minute) {
			if c := mustCreds(t, f.a, alice, "app"); old != nil && c == first {
				t.Fatal("handed out the replaced entry's credentials")
			}
			if old == nil {
				continue
			}
			if v, _ := f.a.entries.Load(old.key); v == old {
				t.Fatalf("at %s the replaced entry is cached again", f.clk.Now().Sub(t0))
			}
		}
		return f.src.calls.Load() - calls
	}
	got := loop(f, old)
	control := newFixture(t, 100)
	mustCreds(t, control.a, alice, "app")
	if want := loop(control, nil); got != want || want < 3 {
		t.Fatalf("%d STS calls in three hours, want %d as without the replacement", got, want)
	}
}
