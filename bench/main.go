// Command bench measures credsidecar against the physical limit: it builds
// and starts the real sidecar (local STS mode, ephemeral loopback ports) and,
// in the same run, a bare net/http server that writes a fixed credentials
// JSON of the same size, drives both with the same closed-loop load
// generator, and prints requests/s, p50 and p99 for each and the ratio
// sidecar/bare. It also measures the SDK's cold sequence on a fresh
// connection (token PUT, role list, credentials), single-connection latency,
// the sidecar's RSS idle, under load and with many cached sessions, and
// how long `serve` takes to be ready on the demo config. Each figure with a
// goal of issue 16 is judged against it; -check exits 1 when one is missed
// (-tolerance gives every goal a relative slack on a noisy machine).
//
// With -scale (the default) it also measures the cost of the config: the
// cached path with 10 to 10 000 clients listed before the caller's, and
// the time to load and reload 10 000 clients.
//
//	go run ./bench [-duration 10s] [-conns 32] [-json] [-cpuprofile FILE] [-single-cpuprofile FILE] [-check [-tolerance 0.05]]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func signalNotify(ch chan os.Signal) { signal.Notify(ch, os.Interrupt, syscall.SIGTERM) }

// options are the command line.
type options struct {
	duration       time.Duration
	jwt            bool
	conns          int
	rounds         int
	warmup         time.Duration
	coldDuration   time.Duration
	coldConns      int
	singleDuration time.Duration
	singleRounds   int
	sessions       int
	scale          bool
	scaleDuration  time.Duration
	jsonOut        bool
	cpuprofile     string
	unitProfile    string
	coldProfile    string
	singleProfile  string
	wrk            bool
	check          bool
	tolerance      float64
	startupRuns    int
	unit           bool
	keep           bool

	bareServer   string
	bareTokenLen int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "keep-alive load per server (split into -rounds alternating runs)")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections")
	fs.IntVar(&o.rounds, "rounds", 3, "alternate bare and sidecar this many times (evens out a noisy machine)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load per server before the first round")
	fs.DurationVar(&o.coldDuration, "cold-duration", 0, "cold-sequence load per server (default duration/2)")
	fs.IntVar(&o.coldConns, "cold-conns", 8, "concurrent cold sequences")
	fs.DurationVar(&o.singleDuration, "single-duration", 0, "single-connection load per server (default duration/4)")
	fs.IntVar(&o.singleRounds, "single-rounds", 0, "alternate bare and sidecar this many times for the single-connection load (default: -rounds, or one per 250 ms of -single-duration if more: its latency moves from one fraction of a second to the next)")
	fs.IntVar(&o.sessions, "sessions", 10000, "cached sessions for the memory run (0 skips it)")
	fs.BoolVar(&o.scale, "scale", true, "also measure the cost of the config: the cached path with 10, 1 000 and 10 000 exact-match clients and 1 000 and 10 000 glob clients, and loading and reloading 10 000 clients")
	fs.DurationVar(&o.scaleDuration, "scale-duration", 0, "keep-alive load per scale config (default duration/2)")
	fs.BoolVar(&o.jwt, "jwt", true, "also measure a JWT client: cached path against bare, and new tokens' first requests")
	fs.BoolVar(&o.jsonOut, "json", false, "print the figures as JSON")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the sidecar under keep-alive load to this file (builds it with a pprof listener), and one of the bare server to FILE without .pprof + .bare.pprof")
	fs.StringVar(&o.coldProfile, "cold-cpuprofile", "", "write a CPU profile of the sidecar under the cold-sequence load to this file, and one of the bare server to FILE without .pprof + .bare.pprof")
	fs.StringVar(&o.singleProfile, "single-cpuprofile", "", "write a CPU profile of the sidecar under the single-connection load to this file, and one of the bare server to FILE without .pprof + .bare.pprof")
	fs.StringVar(&o.unitProfile, "unit-cpuprofile", "", "write CPU profiles of the systemd_unit-matched sidecar under the cold-sequence load to FILE.other-uid and FILE.same-uid")
	fs.BoolVar(&o.wrk, "wrk", false, "also drive the keep-alive comparison with wrk (must be installed: apt-get install wrk)")
	fs.BoolVar(&o.check, "check", false, "exit 1 when a figure misses its goal (issue 16: keep-alive >= 0.95 x bare and p99 <= 1.10 x, cold sequence >= 0.95 x, single-connection p50 <= 1.05 x, RSS <= 20 MiB idle and <= 24 MiB under load, 10 000 sessions <= 48 MiB, ready <= 100 ms)")
	fs.Float64Var(&o.tolerance, "tolerance", 0, "judge -check's goals with this relative slack, for noisy machines: 0.05 accepts floors down to 95% of the goal and ceilings up to 105% (default 0: the goals as written)")
	fs.BoolVar(&o.unit, "unit", true, "also measure systemd_unit clients (as root only)")
	fs.IntVar(&o.startupRuns, "startup-runs", 5, "starts of serve on the demo config for the readiness figure (0 skips it)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, sidecar logs)")
	fs.StringVar(&o.bareServer, "bare-server", "", "internal: run as the bare server with this body file")
	fs.IntVar(&o.bareTokenLen, "bare-token-len", 56, "internal: token length of the bare server")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.conns < 1 || o.rounds < 1 || o.coldConns < 1 || o.duration <= 0 || o.sessions < 0 {
		return nil, errors.New("-conns, -rounds, -cold-conns and -duration must be positive")
	}
	if o.tolerance < 0 || o.tolerance >= 1 {
		return nil, fmt.Errorf("-tolerance must be a fraction in [0, 1), not %g", o.tolerance)
	}
	if o.startupRuns < 0 {
		return nil, fmt.Errorf("-startup-runs must be 0 or more, not %d", o.startupRuns)
	}
	if o.coldDuration == 0 {
		o.coldDuration = o.duration / 2
	}
	if o.singleDuration == 0 {
		o.singleDuration = o.duration / 4
	}
	if o.singleRounds < 0 {
		return nil, fmt.Errorf("-single-rounds must be 0 or more, not %d", o.singleRounds)
	}
	if o.singleRounds == 0 {
		o.singleRounds = max(o.rounds, int(o.singleDuration/singleRoundLength))
	}
	if o.scaleDuration == 0 {
		o.scaleDuration = o.duration / 2
	}
	return o, nil
}

// profiling says whether a CPU profile was asked for: the sidecar is then
// built with a pprof listener.
func (o *options) profiling() bool {
	return o.cpuprofile != "" || o.coldProfile != "" || o.singleProfile != "" || o.unitProfile != ""
}

// singleRoundLength is the default length of a single-connection round.
// One connection's latency here moves from one fraction of a second to the
// next, and a round's p50 ratio with it (0.65 to 1.99 over 16 rounds of
// 250 ms in one run): many short rounds pair each sidecar run with a bare
// run under the same conditions, where three long ones let a slow second
// fall on one server only.
const singleRoundLength = 250 * time.Millisecond

// figures is one server's result of one kind of load.
type figures struct {
	RPS      float64 `json:"per_second"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	Requests uint64  `json:"count"`
	Errors   uint64  `json:"errors"`
	// CPUus is the server's CPU time per request (user + system, from
	// /proc; 0 where it was not measured).
	CPUus float64 `json:"server_cpu_us_per_request,omitempty"`
}

func figuresOf(r *result) figures {
	f := figures{
		RPS: r.rate(), Requests: r.Requests, Errors: r.Errors,
		P50us: float64(r.hist.quantile(0.50)) / 1e3,
		P99us: float64(r.hist.quantile(0.99)) / 1e3,
	}
	if r.Requests > 0 && r.ServerCPU > 0 {
		f.CPUus = float64(r.ServerCPU) / 1e3 / float64(r.Requests)
	}
	return f
}

// comparison is bare versus sidecar under one kind of load.
type comparison struct {
	Bare     figures `json:"bare"`
	Sidecar  figures `json:"sidecar"`
	Ratio    float64 `json:"throughput_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
	P50Ratio float64 `json:"p50_ratio"`
	// RoundRatios and RoundP50Ratios are how the throughput and p50
	// ratios varied over the rounds (nil for a single round).
	RoundRatios    *spread `json:"throughput_ratio_rounds,omitempty"`
	RoundP50Ratios *spread `json:"p50_ratio_rounds,omitempty"`
}

func compare(bare, side *result) comparison {
	return compareFigures(figuresOf(bare), figuresOf(side))
}

// compareRounds compares the merged rounds, and says how each round's
// ratio (a bare run against the sidecar run next to it in time) varied:
// a figure whose rounds spread wide says little about its goal on its own.
func compareRounds(bare, side []*result) comparison {
	all := [2]*result{{}, {}}
	var thr, p50 []float64
	for i := range min(len(bare), len(side)) {
		all[0].merge(bare[i])
		all[1].merge(side[i])
		c := compare(bare[i], side[i])
		thr = append(thr, c.Ratio)
		p50 = append(p50, c.P50Ratio)
	}
	c := compare(all[0], all[1])
	c.RoundRatios, c.RoundP50Ratios = spreadOf(thr), spreadOf(p50)
	return c
}

// spread is the distribution of one ratio over a run's rounds.
type spread struct {
	Rounds int     `json:"rounds"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	// SE is the standard error of the rounds' mean: with the rounds
	// independent, the mean is within about 2 SE of the figure the
	// machine would give in a long run.
	SE float64 `json:"standard_error"`
}

// spreadOf describes xs; nil for fewer than two rounds.
func spreadOf(xs []float64) *spread {
	if len(xs) < 2 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	mean := sum / float64(len(s))
	var ss float64
	for _, x := range s {
		ss += (x - mean) * (x - mean)
	}
	median := s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &spread{Rounds: len(s), Min: s[0], Median: median, Max: s[len(s)-1],
		SE: math.Sqrt(ss/float64(len(s)-1)) / math.Sqrt(float64(len(s)))}
}

func compareFigures(bare, side figures) comparison {
	c := comparison{Bare: bare, Sidecar: side}
	if c.Bare.RPS > 0 {
		c.Ratio = c.Sidecar.RPS / c.Bare.RPS
	}
	if c.Bare.P99us > 0 {
		c.P99Ratio = c.Sidecar.P99us / c.Bare.P99us
	}
	if c.Bare.P50us > 0 {
		c.P50Ratio = c.Sidecar.P50us / c.Bare.P50us
	}
	return c
}

// report is everything the run measured.
type report struct {
	GoVersion     string      `json:"go_version"`
	CPUs          int         `json:"cpus"`
	Conns         int         `json:"conns"`
	Duration      string      `json:"duration_per_server"`
	Rounds        int         `json:"rounds"`
	ResponseBytes int         `json:"response_bytes"`
	KeepAlive     comparison  `json:"keep_alive"`
	KeepAliveWrk  *comparison `json:"keep_alive_wrk,omitempty"`
	ColdConns     int         `json:"cold_conns"`
	Cold          comparison  `json:"cold_sequence"`
	Single        comparison  `json:"single_connection"`
	SingleRounds  int         `json:"single_connection_rounds"`
	// SingleControl is the single-connection load's control: a second
	// bare server against the first, in the same rounds (its "sidecar"
	// is that second bare server).
	SingleControl *comparison `json:"single_connection_control,omitempty"`
	RSSIdleKB     int         `json:"rss_idle_kb"`
	RSSLoadKB     int         `json:"rss_under_load_peak_kb"`
	BareRSSLoadKB int         `json:"bare_rss_under_load_peak_kb"`
	Sessions      int         `json:"sessions,omitempty"`
	SessionsSeen  int         `json:"sessions_cached,omitempty"`
	SessionsErrs  uint64      `json:"sessions_errors,omitempty"`
	SessionsTime  string      `json:"sessions_fill_time,omitempty"`
	RSSIdleSessKB int         `json:"rss_sessions_idle_kb,omitempty"`
	RSSSessKB     int         `json:"rss_sessions_kb,omitempty"`
	// RSSSessPeakKB is the memory run's peak RSS (VmHWM): the start, the
	// load of the config and filling the sessions included.
	RSSSessPeakKB int    `json:"rss_sessions_peak_kb,omitempty"`
	Profile       string `json:"cpu_profile,omitempty"`
	BareProfile   string `json:"bare_cpu_profile,omitempty"`
	// JWTKeepAlive and JWTNewToken are jwtRun's (nil with -jwt=false);
	// JWTStaticToken is its control: the same sidecar and request size
	// with a static token client.
	JWTKeepAlive   *comparison `json:"jwt_keep_alive,omitempty"`
	JWTStaticToken *comparison `json:"jwt_static_token_keep_alive,omitempty"`
	JWTNewToken    *figures    `json:"jwt_new_token,omitempty"`
	ColdProfile    string      `json:"cold_cpu_profile,omitempty"`
	// BareColdProfile is the bare server's, under the same load.
	BareColdProfile string `json:"bare_cold_cpu_profile,omitempty"`
	// SingleProfile and BareSingleProfile are the single-connection load's.
	SingleProfile     string `json:"single_cpu_profile,omitempty"`
	BareSingleProfile string `json:"bare_single_cpu_profile,omitempty"`
	// Unit is the systemd_unit client's run (unit.go).
	Unit        *unitFigures `json:"systemd_unit,omitempty"`
	UnitSameUID *unitFigures `json:"systemd_unit_same_uid,omitempty"`
	// Scale is the cost of the config (scale.go; nil with -scale=false).
	Scale *scaleFigures `json:"scale,omitempty"`
	// Startup is startupRun's (nil with -startup-runs 0).
	Startup *startupFigures `json:"startup,omitempty"`
	// Goals are the goals for the figures above, as -check
	// judges them.
	Goals     []goal  `json:"goals"`
	Tolerance float64 `json:"goals_tolerance"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.bareServer != "" {
		return serveBare(o.bareServer, o.bareTokenLen)
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "credsidecar-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		progress("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	progress("building ./cmd/credsidecar")
	bin, err := buildSidecar(ctx, root, dir, o.profiling())
	if err != nil {
		return err
	}

	rep := &report{
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Conns: o.conns,
		Duration: o.duration.String(), Rounds: o.rounds, ColdConns: o.coldConns,
	}
	if err := throughput(ctx, o, bin, dir, rep, progress); err != nil {
		return err
	}
	if o.jwt {
		if err := jwtRun(ctx, o, bin, dir, rep, progress); err != nil {
			return err
		}
	}
	if o.scale {
		if err := scaleRunAll(ctx, o, bin, dir, rep, progress); err != nil {
			return err
		}
	}
	if o.sessions > 0 {
		if err := sessionsRun(ctx, o, bin, dir, rep, progress); err != nil {
			return err
		}
	}
	if o.startupRuns > 0 {
		if err := startupRun(ctx, o.startupRuns, root, bin, dir, rep, progress); err != nil {
			return err
		}
	}
	rep.Tolerance = o.tolerance
	rep.Goals = goalsOf(rep, o.tolerance)
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if m := missed(rep.Goals); o.check && m != "" {
		return fmt.Errorf("goals missed (-tolerance %g): %s", o.tolerance, m)
	}
	if o.check {
		return scaleCheck(rep.Scale)
	}
	return nil
}

// throughput runs the keep-alive, cold-sequence and single-connection loads
// against the sidecar and the bare server.
func throughput(ctx context.Context, o *options, bin, dir string, rep *report, progress func(string, ...any)) error {
	side, err := startSidecar(ctx, bin, dir, "sidecar", sidecarConfig(0), o.profiling())
	if err != nil {
		return err
	}
	defer side.stop()
	token, err := imdsToken(side.addr)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+side.addr+"/latest/meta-data/iam/security-credentials/app", nil)
	req.Header.Set("X-aws-ec2-metadata-token", token)
	body, err := fetch(req)
	if err != nil {
		return err
	}
	rep.ResponseBytes = len(body)
	bare, err := startBare(ctx, dir, body, token)
	if err != nil {
		return err
	}
	defer bare.stop()
	time.Sleep(500 * time.Millisecond) // let start-up work (warm-up, GC) settle
	rep.RSSIdleKB = rssKB(side.pid())
	progress("sidecar on %s (pid %d), bare server on %s (pid %d), response %d bytes",
		side.addr, side.pid(), bare.addr, bare.pid(), len(body))

	credReq := func(addr string) []byte {
		return []byte("GET /latest/meta-data/iam/security-credentials/app HTTP/1.1\r\nHost: " + addr +
			"\r\nX-aws-ec2-metadata-token: " + token + "\r\n\r\n")
	}
	type target struct {
		name string
		p    *process
		req  []byte
	}
	targets := []*target{
		{name: "bare", p: bare, req: credReq(bare.addr)},
		{name: "sidecar", p: side, req: credReq(side.addr)},
	}
	for _, t := range targets {
		keepAlive(ctx, t.p.addr, t.req, o.conns, o.warmup)
	}
	peaks := map[string]int{}
	rounds := map[string][]*result{}
	per := o.duration / time.Duration(o.rounds)
	for round := range o.rounds {
		order := targets
		if round%2 == 1 {
			order = []*target{targets[1], targets[0]}
		}
		for _, t := range order {
			progress("round %d/%d: %s, %d keep-alive connections, %s", round+1, o.rounds, t.name, o.conns, per)
			stop := make(chan struct{})
			peak := sampleRSS(t.p.pid(), stop)
			rounds[t.name] = append(rounds[t.name], serverCPU(t.p.pid(), func() *result { return keepAlive(ctx, t.p.addr, t.req, o.conns, per) }))
			close(stop)
			peaks[t.name] = max(peaks[t.name], <-peak)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	rep.RSSLoadKB, rep.BareRSSLoadKB = peaks["sidecar"], peaks["bare"]
	rep.KeepAlive = compareRounds(rounds["bare"], rounds["sidecar"])

	if o.wrk {
		if _, err := exec.LookPath("wrk"); err != nil {
			return fmt.Errorf("-wrk: %w (apt-get install -y wrk)", err)
		}
		runs := map[string][]*figures{}
		for round := range o.rounds {
			order := targets
			if round%2 == 1 {
				order = []*target{targets[1], targets[0]}
			}
			for _, t := range order {
				progress("wrk round %d/%d: %s, %d connections, %s", round+1, o.rounds, t.name, o.conns, per)
				f, err := wrkRun(ctx, "http://"+t.p.addr+"/latest/meta-data/iam/security-credentials/app", token, o.conns, per)
				if err != nil {
					return err
				}
				runs[t.name] = append(runs[t.name], f)
			}
		}
		c := compareFigures(mergeFigures(runs["bare"]), mergeFigures(runs["sidecar"]))
		rep.KeepAliveWrk = &c
	}

	// alternate runs load against each of among in n alternating runs of
	// total/n each, as the keep-alive rounds do (every other round in the
	// reverse order), and returns each target's rounds by name.
	alternate := func(what string, among []*target, total time.Duration, n int, load func(addr string, req []byte, d time.Duration) *result) map[string][]*result {
		accs := map[string][]*result{}
		each := max(total/time.Duration(n), 200*time.Millisecond)
		for round := range n {
			order := slices.Clone(among)
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, t := range order {
				progress("%s round %d/%d: %s, %s", what, round+1, n, t.name, each)
				accs[t.name] = append(accs[t.name], serverCPU(t.p.pid(), func() *result { return load(t.p.addr, t.req, each) }))
			}
		}
		return accs
	}
	cold := alternate(fmt.Sprintf("cold sequences (%d workers)", o.coldConns), targets, o.coldDuration, o.rounds,
		func(addr string, _ []byte, d time.Duration) *result {
			return coldSequence(ctx, addr, addr, o.coldConns, d)
		})
	rep.Cold = compareRounds(cold["bare"], cold["sidecar"])
	if o.coldProfile != "" {
		if err := profile(ctx, side, o.coldProfile, o.coldDuration, progress, func(d time.Duration) {
			coldSequence(ctx, side.addr, side.addr, o.coldConns, d)
		}); err != nil {
			return err
		}
		rep.ColdProfile = o.coldProfile
		bareFile := strings.TrimSuffix(o.coldProfile, ".pprof") + ".bare.pprof"
		if err := profile(ctx, bare, bareFile, o.coldDuration, progress, func(d time.Duration) {
			coldSequence(ctx, bare.addr, bare.addr, o.coldConns, d)
		}); err != nil {
			return err
		}
		rep.BareColdProfile = bareFile
	}

	rep.SingleRounds = o.singleRounds
	// The single-connection rounds also measure a second bare server, the
	// control: of two identical servers, the ratio shows what this load's
	// own spread makes of no difference at all. Each round runs bare,
	// sidecar, control or the reverse, so the sidecar stays next to the
	// bare server in time and the control is the one farther from it. It
	// first gets the warm-up's keep-alive and cold loads, as the other two
	// got more of (their threads and heap are those of a server that has
	// seen both).
	control, err := startBare(ctx, dir, body, token)
	if err != nil {
		return err
	}
	defer control.stop()
	ctl := &target{name: "control", p: control, req: credReq(control.addr)}
	keepAlive(ctx, ctl.p.addr, ctl.req, o.conns, o.warmup)
	coldSequence(ctx, ctl.p.addr, ctl.p.addr, o.coldConns, o.warmup)
	single := alternate("single connection", []*target{targets[0], targets[1], ctl}, o.singleDuration, o.singleRounds,
		func(addr string, req []byte, d time.Duration) *result { return keepAlive(ctx, addr, req, 1, d) })
	rep.Single = compareRounds(single["bare"], single["sidecar"])
	c := compareRounds(single["bare"], single["control"])
	rep.SingleControl = &c
	if o.singleProfile != "" {
		if err := profile(ctx, side, o.singleProfile, o.singleDuration, progress, func(d time.Duration) {
			keepAlive(ctx, side.addr, targets[1].req, 1, d)
		}); err != nil {
			return err
		}
		rep.SingleProfile = o.singleProfile
		bareFile := strings.TrimSuffix(o.singleProfile, ".pprof") + ".bare.pprof"
		if err := profile(ctx, bare, bareFile, o.singleDuration, progress, func(d time.Duration) {
			keepAlive(ctx, bare.addr, targets[0].req, 1, d)
		}); err != nil {
			return err
		}
		rep.BareSingleProfile = bareFile
	}

	for _, same := range []bool{false, true} {
		if !o.unit {
			break
		}
		if err := unitRun(ctx, o, bin, dir, bare, side, rep, same, progress); err != nil {
			return err
		}
	}

	if o.cpuprofile != "" {
		if err := profile(ctx, side, o.cpuprofile, o.duration, progress, func(d time.Duration) {
			keepAlive(ctx, side.addr, targets[1].req, o.conns, d)
		}); err != nil {
			return err
		}
		rep.Profile = o.cpuprofile
		bareFile := strings.TrimSuffix(o.cpuprofile, ".pprof") + ".bare.pprof"
		if err := profile(ctx, bare, bareFile, o.duration, progress, func(d time.Duration) {
			keepAlive(ctx, bare.addr, targets[0].req, o.conns, d)
		}); err != nil {
			return err
		}
		rep.BareProfile = bareFile
	}
	return ctx.Err()
}

// profile takes a CPU profile of the sidecar for d (at least 2s) while load
// runs, and writes it to file.
func profile(ctx context.Context, side *process, file string, d time.Duration, progress func(string, ...any), load func(time.Duration)) error {
	secs := max(int(d/time.Second), 2)
	progress("CPU profile of the sidecar under load, %ds, into %s", secs, file)
	var wg sync.WaitGroup
	wg.Go(func() { load(time.Duration(secs)*time.Second + time.Second) })
	r, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", side.pprof, secs), nil)
	b, err := fetch(r)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	return os.WriteFile(file, b, 0o644)
}

// sessionsRun starts a sidecar with o.sessions token clients, asks the ECS
// endpoint once per token, and reads the RSS with every session cached.
func sessionsRun(ctx context.Context, o *options, bin, dir string, rep *report, progress func(string, ...any)) error {
	progress("memory: sidecar with %d clients, one /creds request per bearer token", o.sessions)
	side, err := startSidecar(ctx, bin, dir, "sessions", sidecarConfig(o.sessions), false)
	if err != nil {
		return err
	}
	defer side.stop()
	rep.Sessions = o.sessions
	rep.RSSIdleSessKB = rssKB(side.pid())
	start := time.Now()
	const workers = 16
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var errs uint64
			var c *conn
			for i := w; i < o.sessions && ctx.Err() == nil; i += workers {
				if c == nil {
					var err error
					if c, err = dial(side.addr); err != nil {
						errs++
						continue
					}
				}
				req := "GET /creds HTTP/1.1\r\nHost: " + side.addr + "\r\nAuthorization: " + sessionToken(i) + "\r\n\r\n"
				status, _, keep, err := c.do([]byte(req), false)
				if err != nil || status != 200 {
					errs++
				}
				if err != nil || !keep {
					c.close()
					c = nil
				}
			}
			if c != nil {
				c.close()
			}
			mu.Lock()
			rep.SessionsErrs += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	rep.SessionsTime = time.Since(start).Round(time.Millisecond).String()
	// Warm-up at start fills the cache too; wait until it is complete.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := metricValue(side.admin, "credsidecar_cache_entries")
		if err != nil {
			return err
		}
		rep.SessionsSeen = int(n)
		if rep.SessionsSeen >= o.sessions {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	rep.RSSSessKB = rssKB(side.pid())
	rep.RSSSessPeakKB = peakRSSKB(side.pid())
	return ctx.Err()
}

// printSpread prints how a ratio varied over the rounds.
func printSpread(w io.Writer, what string, s *spread) {
	if s == nil {
		return
	}
	fmt.Fprintf(w, "  rounds' %s ratios: %.3f to %.3f, median %.3f, mean's standard error %.3f (%d rounds)\n",
		what, s.Min, s.Max, s.Median, s.SE, s.Rounds)
}

func fmtDur(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func mib(kb int) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

func printReport(w io.Writer, r *report) {
	fmt.Fprintf(w, "credsidecar benchmark (%s, %d CPUs; both servers are separate processes on 127.0.0.1)\n", r.GoVersion, r.CPUs)
	fmt.Fprintf(w, "response: %d bytes, the sidecar's IMDS credentials JSON; the bare server writes the same bytes\n\n", r.ResponseBytes)
	table := func(title, unit string, c comparison, withP99 bool, extra func()) {
		fmt.Fprintf(w, "%s\n", title)
		fmt.Fprintf(w, "  %-9s %12s %10s %10s %8s %12s\n", "", unit, "p50", "p99", "errors", "server CPU")
		for _, row := range []struct {
			name string
			f    figures
		}{{"bare", c.Bare}, {"sidecar", c.Sidecar}} {
			cpu := "-"
			if row.f.CPUus > 0 {
				cpu = fmt.Sprintf("%.1fµs", row.f.CPUus)
			}
			fmt.Fprintf(w, "  %-9s %12.0f %10s %10s %8d %12s\n", row.name, row.f.RPS, fmtDur(row.f.P50us), fmtDur(row.f.P99us), row.f.Errors, cpu)
		}
		if withP99 {
			fmt.Fprintf(w, "  %-9s %12.3f %10s %10s\n", "ratio", c.Ratio, fmt.Sprintf("%.2fx", c.P50Ratio), fmt.Sprintf("%.2fx", c.P99Ratio))
		} else {
			fmt.Fprintf(w, "  %-9s %12.3f %10s\n", "ratio", c.Ratio, fmt.Sprintf("%.2fx", c.P50Ratio))
		}
		printSpread(w, "throughput", c.RoundRatios)
		printSpread(w, "p50", c.RoundP50Ratios)
		if extra != nil {
			extra()
		}
		fmt.Fprintln(w)
	}
	table(fmt.Sprintf("keep-alive: GET /latest/meta-data/iam/security-credentials/app with the IMDSv2 token, %d connections, %s per server in %d rounds",
		r.Conns, r.Duration, r.Rounds), "req/s", r.KeepAlive, true, nil)
	if r.KeepAliveWrk != nil {
		table("the same with wrk -t2 (p50/p99: averages of the rounds' percentiles)", "req/s", *r.KeepAliveWrk, true, nil)
	}
	printJWT(w, r)
	table(fmt.Sprintf("cold SDK sequence on a new connection each time (PUT token, GET role list, GET credentials), %d workers", r.ColdConns),
		"seq/s", r.Cold, true, nil)
	table(fmt.Sprintf("single connection, closed loop, in %d rounds", r.SingleRounds), "req/s", r.Single, false, func() {
		c := r.SingleControl
		if c == nil {
			return
		}
		fmt.Fprintf(w, "  control: a second bare server in the same rounds (two identical servers: what this load's spread makes of no difference)\n")
		fmt.Fprintf(w, "  %-9s %12.0f %10s %10s %8d %12s\n", "control", c.Sidecar.RPS, fmtDur(c.Sidecar.P50us), fmtDur(c.Sidecar.P99us), c.Sidecar.Errors, fmt.Sprintf("%.1fµs", c.Sidecar.CPUus))
		fmt.Fprintf(w, "  %-9s %12.3f %10s\n", "ratio", c.Ratio, fmt.Sprintf("%.2fx", c.P50Ratio))
		printSpread(w, "control's p50", c.RoundP50Ratios)
	})
	printUnit(w, r.Unit)
	printUnit(w, r.UnitSameUID)
	printScale(w, r.Scale)
	fmt.Fprintf(w, "memory (VmRSS)\n")
	fmt.Fprintf(w, "  sidecar idle                 %s\n", mib(r.RSSIdleKB))
	fmt.Fprintf(w, "  sidecar under load (peak)    %s   (bare server: %s)\n", mib(r.RSSLoadKB), mib(r.BareRSSLoadKB))
	if r.Sessions > 0 {
		fmt.Fprintf(w, "  sidecar, %d clients, start  %s\n", r.Sessions, mib(r.RSSIdleSessKB))
		fmt.Fprintf(w, "  sidecar, %d cached sessions %s   (cache entries %d; %d /creds requests in %s, %d errors)\n",
			r.Sessions, mib(r.RSSSessKB), r.SessionsSeen, r.Sessions, r.SessionsTime, r.SessionsErrs)
		fmt.Fprintf(w, "  sidecar, %d sessions, peak   %s   (VmHWM: start, config load and the fill included)\n", r.Sessions, mib(r.RSSSessPeakKB))
	}
	if s := r.Startup; s != nil {
		fmt.Fprintf(w, "start-up: serve on the demo config, ready (listeners serving, warm-up ended), %d starts\n", s.Runs)
		fmt.Fprintf(w, "  from exec: median %.1f ms, slowest %.1f ms; the sidecar's own figure (from serve's start): %.1f ms\n\n", s.WallMs, s.WallMaxMs, s.SelfMs)
	}
	printGoals(w, r.Goals, r.Tolerance)
	for _, p := range []string{r.Profile, r.BareProfile, r.ColdProfile, r.BareColdProfile} {
		if p != "" {
			fmt.Fprintf(w, "\nCPU profile: %s (go tool pprof -top %s)\n", p, p)
		}
	}
}
