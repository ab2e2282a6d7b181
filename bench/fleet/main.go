// Command fleet is the fleet model: it runs the agent's own scheduling
// decisions (agent/sched: refresh point with jitter, backoff with jitter,
// the STS budget's lanes over golang.org/x/time/rate's token bucket, the
// warm-up's choice) on simulated time for N nodes × M sessions, one
// sidecar per node, and prints the STS calls per second the whole fleet
// makes (mean, p99 over one-second windows, peak) over a simulated day in
// four scenarios: steady state, a 20-minute STS outage ending at once, a
// config rollout that changes every role, and every node restarting in
// the same second. For the restart storm it then prints calls per second
// against first-call latency for the settings that trade one for the
// other (sts.max_qps, cache.warm_max).
//
//	go run ./bench/fleet [-nodes 100,1000,10000] [-sessions 20] [-quota 1000] [-seed 1]
//
// The quota is a parameter: AWS documents no STS request-rate quota (the
// "IAM and AWS STS quotas" page lists object and size quotas only; STS
// throttles with token buckets whose sizes it does not publish), so the
// default is a figure to compare against, not AWS's.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	nodesFlag := fs.String("nodes", "100,1000,10000", "fleet sizes, comma-separated")
	sessions := fs.Int("sessions", 20, "sessions per node (one client each, all in use)")
	quota := fs.Float64("quota", 1000, "the account's STS calls per second to compare against (AWS publishes none)")
	seed := fs.Uint64("seed", 1, "random seed")
	day := fs.Duration("day", 24*time.Hour, "simulated time per scenario")
	tradeoff := fs.Bool("tradeoff", true, "also print the restart storm's calls against first-call latency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizes []int
	for _, f := range strings.Split(*nodesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-nodes: %q is not a positive count", f)
		}
		sizes = append(sizes, n)
	}
	if *quota <= 0 {
		return fmt.Errorf("-quota must be positive, not %g", *quota)
	}
	start := time.Now()
	// Every run is independent: run them on all cores, print in order.
	var jobs []job
	for _, n := range sizes {
		for _, sc := range []Scenario{Steady, Outage, Rollout, Restart} {
			p := DefaultParams(n)
			p.Sessions, p.Seed, p.Day = *sessions, *seed, *day
			p.At = min(p.At, p.Day/2)
			jobs = append(jobs, job{p: p, sc: sc})
		}
	}
	tradeoffFrom := len(jobs)
	if *tradeoff {
		n := sizes[len(sizes)-1]
		for _, qps := range []float64{10, 2, 1, 0.5} {
			for _, wm := range []int{64, 0} {
				p := DefaultParams(n)
				p.Sessions, p.Seed, p.MaxQPS, p.WarmMax = *sessions, *seed, qps, wm
				// The storm and its echo (the renewals of the sessions
				// it issued, 30 to 40 minutes later) are over within the
				// hour: simulate just that.
				p.Day, p.At = 70*time.Minute, 10*time.Minute
				jobs = append(jobs, job{p: p, sc: Restart})
			}
		}
	}
	if err := runAll(jobs); err != nil {
		return err
	}
	fmt.Fprintf(out, "Fleet model: %d sessions of 1h per node, defaults (sts.max_qps 10, cache.warm_max 64, error_ttl 5s), STS latency 100ms, quota %g calls/s.\n\n", *sessions, *quota)
	fmt.Fprintln(out, "| nodes | scenario | mean calls/s | p99 | peak | peak in the hour after | under quota | least time left (healthy) | sessions expired | first call p50 / p99 / max, >1s |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|")
	for _, j := range jobs[:tradeoffFrom] {
		r := j.r
		under := "yes"
		if float64(r.Peak) > *quota {
			under = "no"
		}
		first := "—"
		if len(r.FirstCall) > 0 {
			first = fmt.Sprintf("%s / %s / %s, %.1f%%", ms(r.FirstCallQuantile(0.5)), ms(r.FirstCallQuantile(0.99)), ms(r.FirstCall[len(r.FirstCall)-1]), 100*r.FirstCallOver(time.Second))
		}
		fmt.Fprintf(out, "| %d | %s | %.1f | %.0f | %d | %d | %s | %s | %d | %s |\n", j.p.Nodes, j.sc, r.Mean, r.P99, r.Peak, r.PeakAfter, under, r.MinLeftHealthy.Round(time.Second), r.Expired, first)
	}
	if *tradeoff {
		fmt.Fprintf(out, "\nRestart storm, %d nodes × %d sessions, first calls within 10s of the restart:\n\n", sizes[len(sizes)-1], *sessions)
		fmt.Fprintln(out, "| sts.max_qps | cache.warm_max | peak calls/s | mean calls/s, first minute | first call p50 / p99 / max | first calls > 1s |")
		fmt.Fprintln(out, "|---|---|---|---|---|---|")
		for _, j := range jobs[tradeoffFrom:] {
			r := j.r
			fmt.Fprintf(out, "| %g | %d | %d | %.0f | %s / %s / %s | %.1f%% |\n", j.p.MaxQPS, j.p.WarmMax, r.PeakAfter, r.firstMinute, ms(r.FirstCallQuantile(0.5)), ms(r.FirstCallQuantile(0.99)), ms(r.FirstCall[len(r.FirstCall)-1]), 100*r.FirstCallOver(time.Second))
		}
	}
	fmt.Fprintf(out, "\n(%s of wall time)\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// job is one simulated run and its result.
type job struct {
	p  Params
	sc Scenario
	r  *Result
}

// runAll runs jobs on GOMAXPROCS goroutines, largest first (so the last
// to finish is a small one).
func runAll(jobs []job) error {
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(jobs[b].p.Nodes*int(jobs[b].p.Day/time.Minute), jobs[a].p.Nodes*int(jobs[a].p.Day/time.Minute))
	})
	next := make(chan int, len(jobs))
	for _, i := range order {
		next <- i
	}
	close(next)
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := Run(jobs[i].p, jobs[i].sc)
				if err != nil {
					errs <- fmt.Errorf("%d nodes, %s: %w", jobs[i].p.Nodes, jobs[i].sc, err)
					return
				}
				jobs[i].r = r
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}
