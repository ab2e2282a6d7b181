package agent

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// The queue runs each deadline once, in deadline order and, among equal
// deadlines, in the order they were armed; re-arming replaces an entry's
// deadline and cancelling removes it; one clock timer serves them all
// and none is left once the queue is empty.
func TestDueQueueOrder(t *testing.T) {
	clk := clock.NewFake(t0)
	var ran []string
	q := &dueQueue{clk: clk, run: func(e *entry, kind dueKind, failedAt int64) {
		if kind != dueRetry || failedAt != 7 {
			t.Errorf("%s ran with %d/%d", e.key, kind, failedAt)
		}
		ran = append(ran, e.key+"@"+clk.Now().Sub(t0).String())
	}}
	es := map[string]*entry{}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		es[k] = &entry{key: k}
	}
	q.arm(es["a"], 3*time.Second, dueRetry, 7)
	q.arm(es["b"], time.Second, dueRetry, 7)
	q.arm(es["c"], 3*time.Second, dueRetry, 7)
	q.arm(es["d"], 2*time.Second, dueRetry, 7)
	q.arm(es["e"], 2*time.Second, dueRetry, 7)
	q.arm(es["d"], 4*time.Second, dueRetry, 7) // replaces 2s
	q.cancel(es["e"])
	q.cancel(es["e"]) // twice is fine
	if n, p := q.dueLen(), clk.Pending(); n != 4 || p != 1 {
		t.Fatalf("%d armed on %d timers, want 4 on 1", n, p)
	}
	clk.Advance(10 * time.Second)
	want := []string{"b@1s", "a@3s", "c@3s", "d@4s"}
	if !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
	if n, p := q.dueLen(), clk.Pending(); n != 0 || p != 0 {
		t.Fatalf("%d still armed, %d timers pending", n, p)
	}
	// Cancelling the last deadline stops the timer.
	q.arm(es["a"], time.Hour, dueRetry, 7)
	q.cancel(es["a"])
	if p := clk.Pending(); p != 0 {
		t.Fatalf("%d timers pending with nothing armed", p)
	}
}

// Random arms, re-arms and cancels: whatever the sequence, each armed
// entry runs once, at its last deadline, in (deadline, arm order) order.
func TestDueQueueRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		clk := clock.NewFake(t0)
		type fired struct {
			key string
			at  time.Duration
		}
		var got []fired
		q := &dueQueue{clk: clk, run: func(e *entry, _ dueKind, _ int64) {
			got = append(got, fired{e.key, clk.Now().Sub(t0)})
		}}
		n := 1 + rng.IntN(40)
		es := make([]*entry, n)
		type armed struct {
			at  time.Duration
			seq int
		}
		last := map[int]armed{}
		for i := range es {
			es[i] = &entry{key: string(rune('A' + i))}
		}
		for seq := range 3 * n {
			i := rng.IntN(n)
			if rng.IntN(4) == 0 {
				q.cancel(es[i])
				delete(last, i)
				continue
			}
			d := time.Duration(rng.IntN(5)) * time.Second
			q.arm(es[i], d, dueRefresh, 0)
			last[i] = armed{d, seq}
		}
		var want []fired
		keys := make([]int, 0, len(last))
		for i := range last {
			keys = append(keys, i)
		}
		slices.SortFunc(keys, func(a, b int) int {
			if last[a].at != last[b].at {
				return int(last[a].at - last[b].at)
			}
			return last[a].seq - last[b].seq
		})
		for _, i := range keys {
			want = append(want, fired{es[i].key, last[i].at})
		}
		clk.Advance(time.Minute)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: ran %v, want %v", round, got, want)
		}
	}
}

// Deadlines due at the same instant are handed to run together; one of
// them re-armed or cancelled by an earlier one's run (a chained role's
// renewal renewing its first hop) no longer runs, as its own stopped
// timer would not have.
func TestDueQueueReplacedBeforeRun(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b, c := &entry{key: "a"}, &entry{key: "b"}, &entry{key: "c"}
	var ran []string
	var q *dueQueue
	q = &dueQueue{clk: clk, run: func(e *entry, kind dueKind, _ int64) {
		ran = append(ran, e.key+"@"+clk.Now().Sub(t0).String())
		if e == a && kind == dueRefresh {
			q.arm(b, time.Minute, dueRefresh, 0) // renewed: due later
			q.cancel(c)                          // evicted
		}
	}}
	q.arm(a, time.Second, dueRefresh, 0)
	q.arm(b, time.Second, dueRefresh, 0)
	q.arm(c, time.Second, dueRefresh, 0)
	clk.Advance(2 * time.Minute)
	if want := []string{"a@1s", "b@1m1s"}; !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
}
