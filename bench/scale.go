package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/scaleconfig"
)

// scaleFigures is the cost of a request as the config grows: the cached
// path (keep-alive, the IMDS credentials GET of a client matched by source
// address, listed last) with n other clients before it, as a ratio to the
// 10-client figure of the same run; and the time to load and reload a
// config of 10 000 clients.
type scaleFigures struct {
	// Runs are the configs measured, the 10-client one first.
	Runs []scaleRun `json:"runs"`
	// LoadMs and ReloadMs are the medians of scaleLoads config loads of
	// LoadClients clients (config.Load and agent.New), and of reloads
	// (config.Load, config.Reconcile, agent.Apply), in the bench process.
	LoadClients int     `json:"load_clients"`
	LoadMs      float64 `json:"load_ms"`
	ReloadMs    float64 `json:"reload_ms"`
	// LoadCPUMs and ReloadCPUMs are the same medians in CPU time (user and
	// system, all threads, the GC's included): on a shared machine the
	// wall time also measures the neighbours.
	LoadCPUMs   float64 `json:"load_cpu_ms"`
	ReloadCPUMs float64 `json:"reload_cpu_ms"`
}

// scaleRun is one config of the scale run.
type scaleRun struct {
	// Clients is the number of other clients, Glob whether their matches
	// are globs (scanned) rather than exact values (indexed).
	Clients int     `json:"clients"`
	Glob    bool    `json:"glob"`
	Figures figures `json:"keep_alive"`
	// Ratio is throughput over the 10-client exact run's.
	Ratio float64 `json:"throughput_ratio_to_10"`
	// RSSKB is the sidecar's VmRSS after the run.
	RSSKB int `json:"rss_kb"`
}

// scaleSizes are the scale run's configs: exact matches at 10, 1 000 and
// 10 000 clients, globs at 1 000 and 10 000.
var scaleSizes = []struct {
	n    int
	glob bool
}{{10, false}, {1000, false}, {10000, false}, {1000, true}, {10000, true}}

const scaleLoads = 5

// scaleConfig is sidecarConfig's throughput shape with n clients of
// scaleconfig's kinds before the bench's own client.
func scaleConfig(n int, glob bool, jwksFile string) string {
	base := sidecarConfig(0)
	i := strings.Index(base, "clients:\n")
	var b strings.Builder
	b.WriteString(strings.Replace(base[:i], "max_entries: 10000", fmt.Sprintf("max_entries: %d", max(10000, n+10)), 1))
	b.WriteString("clients:\n")
	scaleconfig.Clients(&b, n, glob, "app")
	b.WriteString(base[i+len("clients:\n"):])
	b.WriteString(scaleconfig.ProviderYAML(jwksFile))
	return b.String()
}

// writeJWKS writes a key set for the scale configs' identity provider (no
// token of it is ever presented: its clients only have to load).
func writeJWKS(dir string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	doc, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "scale", Use: "sig", Algorithm: "ES256"}}})
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, "scale-jwks.json")
	return f, os.WriteFile(f, doc, 0o600)
}

// scaleRunAll starts one sidecar per config of scaleSizes, waits for each
// one's warm-up, and drives them in -rounds alternating runs with the
// keep-alive load, then times loads and reloads in process.
func scaleRunAll(ctx context.Context, o *options, bin, dir string, rep *report, progress func(string, ...any)) error {
	jwks, err := writeJWKS(dir)
	if err != nil {
		return err
	}
	sf := &scaleFigures{}
	rep.Scale = sf
	type target struct {
		p    *process
		req  []byte
		acc  *result
		n    int
		glob bool
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.p.stop()
		}
	}()
	for _, s := range scaleSizes {
		name := fmt.Sprintf("scale-%d-glob-%v", s.n, s.glob)
		progress("scale: sidecar with %d %s clients before the bench's", s.n, map[bool]string{false: "exact-match", true: "glob"}[s.glob])
		p, err := startSidecar(ctx, bin, dir, name, scaleConfig(s.n, s.glob, jwks), false)
		if err != nil {
			return err
		}
		targets = append(targets, &target{p: p, acc: &result{}, n: s.n, glob: s.glob})
		// Every client's default-role session is warmed at start: wait
		// until that is over, so the load measures the cached path only.
		if err := waitEntries(ctx, p, s.n+1, 60*time.Second); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		token, err := imdsToken(p.addr)
		if err != nil {
			return err
		}
		targets[len(targets)-1].req = []byte("GET /latest/meta-data/iam/security-credentials/app HTTP/1.1\r\nHost: " + p.addr +
			"\r\nX-aws-ec2-metadata-token: " + token + "\r\n\r\n")
	}
	per := max(o.scaleDuration/time.Duration(o.rounds), 200*time.Millisecond)
	for _, t := range targets {
		keepAlive(ctx, t.p.addr, t.req, o.conns, o.warmup/2)
	}
	for round := range o.rounds {
		order := slices.Clone(targets)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			progress("scale round %d/%d: %d clients (glob %v), %s", round+1, o.rounds, t.n, t.glob, per)
			t.acc.merge(keepAlive(ctx, t.p.addr, t.req, o.conns, per))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	base := targets[0].acc.rate()
	for _, t := range targets {
		r := scaleRun{Clients: t.n, Glob: t.glob, Figures: figuresOf(t.acc), RSSKB: rssKB(t.p.pid())}
		if base > 0 {
			r.Ratio = t.acc.rate() / base
		}
		sf.Runs = append(sf.Runs, r)
	}
	return scaleLoad(dir, jwks, 10000, sf, progress)
}

// waitEntries waits until the sidecar caches n sessions, or its count
// has not grown for a second (a warm-up bounded below n).
func waitEntries(ctx context.Context, p *process, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	last, still := -1, 0
	for {
		got, err := metricValue(p.admin, "credsidecar_cache_entries")
		if err != nil {
			return err
		}
		if int(got) == last {
			still++
		} else {
			last, still = int(got), 0
		}
		if last >= n || still >= 10 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d sessions cached after %s", last, n, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scaleCheck is -check's part for the scale run: exact matches within 5%
// of the 10-client throughput, and a 10 000-client config loaded and
// reloaded within 200 ms of CPU time (conservative: it counts the GC's
// threads too, but not the neighbours a shared machine adds to wall time).
func scaleCheck(sf *scaleFigures) error {
	if sf == nil {
		return nil
	}
	var bad []string
	for _, r := range sf.Runs {
		if !r.Glob && r.Ratio < 0.95 {
			bad = append(bad, fmt.Sprintf("%d exact-match clients: throughput %.3f of the 10-client figure (floor 0.95)", r.Clients, r.Ratio))
		}
	}
	if sf.LoadCPUMs > 200 || sf.ReloadCPUMs > 200 {
		bad = append(bad, fmt.Sprintf("%d clients: load %.0f ms, reload %.0f ms of CPU (ceiling 200 ms)", sf.LoadClients, sf.LoadCPUMs, sf.ReloadCPUMs))
	}
	if len(bad) > 0 {
		return errors.New("scale: " + strings.Join(bad, "; "))
	}
	return nil
}

// noSource answers no call: the load timing's agent never fetches.
type noSource struct{}

func (noSource) Retrieve(context.Context, agent.Request) (*agent.Credentials, error) {
	return nil, errors.New("the load timing fetches nothing")
}

// scaleLoad times, in this process, what the daemon does to load a config
// of n clients (config.Load: read, parse, validate, resolve; then the
// agent compiles it) and to reload one (config.Load, config.Reconcile,
// agent.Apply), each scaleLoads times, alternating two configs that differ
// in a role's duration so every reload changes something.
func scaleLoad(dir, jwks string, n int, sf *scaleFigures, progress func(string, ...any)) error {
	sf.LoadClients = n
	a := scaleConfig(n, false, jwks)
	b := strings.Replace(a, "duration: 1h", "duration: 2h", 1)
	files := [2]string{filepath.Join(dir, "load-a.yaml"), filepath.Join(dir, "load-b.yaml")}
	for i, c := range []string{a, b} {
		if err := os.WriteFile(files[i], []byte(c), 0o600); err != nil {
			return err
		}
	}
	progress("scale: timing %d loads and reloads of %d clients", scaleLoads, n)
	var loads, reloads, loadsCPU, reloadsCPU []time.Duration
	for range scaleLoads {
		runtime.GC() // the previous round's garbage is not this one's
		c0, t0 := selfCPU(), time.Now()
		cfg, err := config.Load(files[0])
		if err != nil {
			return err
		}
		ag, err := agent.New(agent.Options{Source: noSource{}, Logger: zap.NewNop(), DisableWarm: true}, cfg)
		if err != nil {
			return err
		}
		loads, loadsCPU = append(loads, time.Since(t0)), append(loadsCPU, selfCPU()-c0)
		runtime.GC()
		c0, t0 = selfCPU(), time.Now()
		next, err := config.Load(files[1])
		if err != nil {
			ag.Close()
			return err
		}
		if r := config.Reconcile(cfg, next); r.Config != nil {
			ag.Apply(r.Config)
		}
		reloads, reloadsCPU = append(reloads, time.Since(t0)), append(reloadsCPU, selfCPU()-c0)
		ag.Close()
	}
	sf.LoadMs, sf.ReloadMs = medianMs(loads), medianMs(reloads)
	sf.LoadCPUMs, sf.ReloadCPUMs = medianMs(loadsCPU), medianMs(reloadsCPU)
	return nil
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medianMs(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / 1e6
}

func printScale(w io.Writer, sf *scaleFigures) {
	if sf == nil {
		return
	}
	fmt.Fprintf(w, "cost of the config: keep-alive cached path of a client listed after n others (tokens, uids, units, JWT subjects, container labels, CIDRs; or their glob forms)\n")
	fmt.Fprintf(w, "  %-16s %12s %10s %10s %12s %10s\n", "clients", "req/s", "p50", "p99", "ratio to 10", "RSS")
	for _, r := range sf.Runs {
		kind := "exact"
		if r.Glob {
			kind = "glob"
		}
		fmt.Fprintf(w, "  %-16s %12.0f %10s %10s %12.3f %10s\n", fmt.Sprintf("%d %s", r.Clients, kind), r.Figures.RPS,
			fmtDur(r.Figures.P50us), fmtDur(r.Figures.P99us), r.Ratio, mib(r.RSSKB))
	}
	fmt.Fprintf(w, "  config of %d clients: load %.0f ms (%.0f ms CPU), reload %.0f ms (%.0f ms CPU); medians of %d, in the bench process\n\n",
		sf.LoadClients, sf.LoadMs, sf.LoadCPUMs, sf.ReloadMs, sf.ReloadCPUMs, scaleLoads)
}
