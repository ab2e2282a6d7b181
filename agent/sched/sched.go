// Package sched holds the agent's scheduling decisions as pure functions of
// time, randomness and counts: when a session is renewed, how long a failed
// renewal waits, which request may spend a token of the STS budget, and
// which clients are warmed at start. The agent calls them on its clock;
// the fleet model (bench/fleet) calls the very same functions on simulated
// time for thousands of nodes, so what the model prints is what the agent
// does.
package sched

import (
	"math"
	"slices"
	"time"
)

// Refresh and retry policy, in one place.
const (
	// RefreshMargin: a session is renewed no later than this before expiry.
	RefreshMargin = 20 * time.Minute
	// BackoffBase, BackoffCap and BackoffFloor bound the retry delay
	// between logical calls after a failed renewal (see Backoff).
	BackoffBase  = time.Second
	BackoffCap   = 5 * time.Minute
	BackoffFloor = 10 * time.Second
	// WaitWindow: a caller waits for a renewal (in the Caller lane) only
	// when the cached credentials have less than this left.
	WaitWindow = 5 * time.Minute
	// WarmWorkers bounds a warm-up's fetches in flight: the STS budget
	// paces them anyway; a few hide STS's latency.
	WarmWorkers = 4
)

// RefreshAt is the refresh policy: renew no earlier than half the lifetime
// and no later than two thirds of it or RefreshMargin before expiry,
// whichever comes first; if that is before the half-life point, at
// half-life (so short sessions do not renew in a loop). jitter in [0,1)
// picks the point within that window, spreading a fleet's renewals.
func RefreshAt(now, exp time.Time, jitter float64) time.Time {
	life := exp.Sub(now)
	if life <= 0 {
		return now
	}
	earliest := now.Add(life / 2)
	latest := now.Add(life * 2 / 3)
	if m := exp.Add(-RefreshMargin); m.Before(latest) {
		latest = m
	}
	if latest.Before(earliest) {
		latest = earliest
	}
	return earliest.Add(time.Duration(jitter * float64(latest.Sub(earliest))))
}

// Backoff is the delay before retrying a renewal after its failures-th
// consecutive failure (1 = the first), with left the time the cached
// credentials have left: capped exponential backoff with full jitter
// (jitter in [0,1)), so a fleet that failed together does not retry
// together. The ceiling is also at most a quarter of the time left (but
// not under BackoffFloor): a session far from expiry retries rarely — an
// outage's retries are mostly of such sessions, and they are the fleet's
// load on a failing STS — and one near expiry retries often enough to be
// renewed soon after STS is back, with most of its time left.
func Backoff(failures int, left time.Duration, jitter float64) time.Duration {
	ceiling := float64(BackoffBase) * math.Pow(2, float64(min(max(failures, 1)-1, 16)))
	ceiling = min(ceiling, float64(BackoffCap), float64(max(BackoffFloor, left/4)))
	return time.Duration(jitter * ceiling)
}

// ProbeDue reports whether a background renewal may call STS at now,
// given the streak of consecutive failed calls and when the last failed
// probe's backoff ends (next). While STS is healthy (streak 0) every
// renewal may; while it fails, one renewal probes it at a time and the
// others wait their own backoff without calling: their calls would fail
// with the probe's, so a node's load on a failing STS is one call per
// backoff, not one per session. Callers' foreground fetches are not
// gated (the negative cache bounds them).
func ProbeDue(streak int, now, next time.Time) bool {
	return streak == 0 || !now.Before(next)
}

// Lane is who is asking for a token of the STS budget, in order of
// precedence.
type Lane int

// Lanes of the STS budget.
const (
	// Caller: a miss, or a caller waiting for a renewal near expiry.
	Caller Lane = iota
	// Renewal: a background renewal of a session someone uses.
	Renewal
	// Warm: a warm-up fetch of a session nobody has asked for yet.
	Warm
)

// Budget is what a lane's grant depends on: the tokens there now, the
// bucket's burst, and who else is waiting.
type Budget struct {
	// Tokens are the tokens in the bucket now (may be fractional).
	Tokens float64
	// Burst is the bucket's size.
	Burst int
	// CallersQueued: callers wait for tokens.
	CallersQueued bool
	// RenewalsWaiting: background renewals wait for tokens.
	RenewalsWaiting bool
}

// Reserve is the part of the burst that background work (renewals and
// warm-up) leaves for callers: half of it, so a caller arriving while
// background work spends the budget still finds a token at once.
func Reserve(burst int) float64 {
	if burst > 1 {
		return float64(burst) / 2
	}
	return 0
}

// Grant reports whether a request of lane may take a token now. Callers
// take one whenever one is there and no caller queued before them (the
// queue is served in its own order). Renewals and warm-up fetches never
// take a token a caller is waiting for, and leave Reserve for callers;
// warm-up fetches also yield to waiting renewals, so warming sessions
// nobody asked for never delays keeping fresh the ones in use.
func Grant(lane Lane, b Budget) bool {
	switch lane {
	case Caller:
		return !b.CallersQueued && b.Tokens >= 1
	case Renewal:
		return !b.CallersQueued && b.Tokens >= 1+Reserve(b.Burst)
	default:
		return !b.CallersQueued && !b.RenewalsWaiting && b.Tokens >= 1+Reserve(b.Burst)
	}
}

// Wait is how long a background lane waits, at rate tokens per second,
// before its grant can hold on the tokens alone (zero if it holds now).
func Wait(b Budget, rate float64) time.Duration {
	need := 1 + Reserve(b.Burst) - b.Tokens
	if need <= 0 || rate <= 0 {
		return 0
	}
	return time.Duration(need / rate * float64(time.Second))
}

// Seen is what the node's facts say about a client's conditions.
type Seen int

// Verdicts on a client's conditions.
const (
	// Unknown: nothing on the node can tell (a bearer token, a JWT, a
	// condition on something the node's facts do not list).
	Unknown Seen = iota
	// Holds: every condition can be seen to hold for something on this
	// node (an address it has, a uid with a process, a running unit or
	// container).
	Holds
	// Never: some condition can be seen to hold for nothing on this node,
	// so no caller here can be this client now.
	Never
)

// Candidate is a client the warm-up could fetch a session for.
type Candidate struct {
	// Seen is the verdict of the node's facts on its conditions.
	Seen Seen
	// LastAsked is when a caller last asked for one of its sessions on
	// this node (zero: never, as far as the agent remembers).
	LastAsked time.Time
}

// WarmOrder picks at most limit of cands to warm, in the order to warm
// them: first the clients asked for on this node, most recent first; then
// those whose conditions can be seen to hold here, in file order. Clients
// nothing can tell about (a bearer token, a JWT) are warmed too, in file
// order, only when every client that could be here fits under the limit —
// when there is no choice to make. In a larger config they are most
// likely other nodes' (a DaemonSet's config lists the whole cluster), and
// warming the first few in file order would spend limit STS calls per
// restart for nobody. Clients that can be seen not to hold here are never
// warmed, even if they asked before (what made them hold is gone). It
// returns indexes into cands and costs O(len(cands)) plus sorting the
// asked ones.
func WarmOrder(cands []Candidate, limit int) []int {
	if limit <= 0 {
		return nil
	}
	var asked []int
	possible := 0
	for i, c := range cands {
		if c.Seen != Never {
			possible++
			if !c.LastAsked.IsZero() {
				asked = append(asked, i)
			}
		}
	}
	sortByRecency(asked, cands)
	out := asked[:min(len(asked), limit)]
	fill := []Seen{Holds}
	if possible <= limit {
		fill = append(fill, Unknown)
	}
	for _, want := range fill {
		for i, c := range cands {
			if len(out) >= limit {
				return out
			}
			if c.Seen == want && c.LastAsked.IsZero() {
				out = append(out, i)
			}
		}
	}
	return out
}

// sortByRecency sorts idx by cands' LastAsked, most recent first, file
// order among equals.
func sortByRecency(idx []int, cands []Candidate) {
	slices.SortStableFunc(idx, func(a, b int) int { return cands[b].LastAsked.Compare(cands[a].LastAsked) })
}
