package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/attest/proc"
	"github.com/credsidecar/credsidecar/audit"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/imds"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/connlimit"
	"github.com/credsidecar/credsidecar/internal/httpserver"
	"github.com/credsidecar/credsidecar/jwtauth"
	"github.com/credsidecar/credsidecar/metrics"
	"github.com/credsidecar/credsidecar/sts/awssts"
	"github.com/credsidecar/credsidecar/sts/localsts"
)

// serveHooks let tests observe the daemon; zero in production.
type serveHooks struct {
	// ready is called with the bound addresses once every listener is up.
	ready func(credentials []string, admin, sts string)
}

const shutdownGrace = 10 * time.Second

// daemon is the wired process: what a reload touches, and what the one
// cleanup releases.
type daemon struct {
	log *zap.Logger
	// started is when serve began (the readiness figure counts from it).
	started time.Time
	// cfg is the config in force; only the watcher's goroutine changes it.
	cfg     *config.Config
	watcher *config.Watcher
	lns     listeners
	// servers are the HTTP servers of lns, built before any is started.
	servers []served
	agent   *agent.Agent
	imds    *imds.Server
	issuer  *localsts.Issuer
	// jwt verifies bearer JWTs (identity_providers).
	jwt     *jwtauth.Authenticator
	metrics *metrics.Set
	// auditLog is the open audit file (nil when audit_log is off).
	auditLog *audit.Log
	// credConns bounds the credential listeners' connections together.
	credConns *connlimit.Limiter
	// ready is set once every listener is up.
	ready atomic.Bool
	// sourceOK reports whether the credential source is usable: always in
	// local mode; in aws mode once the sidecar's own credentials resolved.
	sourceOK func() bool
	// procs attests host processes (nil where unavailable).
	procs *proc.Attestor
	// ctrs resolves container addresses while a client matches on
	// containers.
	ctrs *containers
}

// serve runs the daemon until ctx ends: bind every listener, build the
// components, run them. One cleanup (d.close) releases whatever was
// started, whichever step failed; run returns only once every goroutine
// it started has ended.
func serve(ctx context.Context, path string, log *zap.Logger, hooks serveHooks) error {
	d := &daemon{log: log, started: time.Now(), metrics: metrics.New()}
	defer d.close()
	if err := d.load(path); err != nil {
		return err
	}
	// Bind everything before anything else (no credentials are minted for
	// a daemon that cannot serve them), so a bad address fails start-up as
	// a whole with a clear error.
	if err := d.bind(); err != nil {
		return err
	}
	if err := d.build(ctx); err != nil {
		return err
	}
	releaseLoadGarbage(d.cfg)
	return d.run(ctx, hooks)
}

// load arms the config watch and reads the first config through it: the
// watcher is the config's one reader.
func (d *daemon) load(path string) error {
	var err error
	if d.watcher, d.cfg, err = config.NewWatcher(path, d.log.Named("config"), config.WatcherOptions{}); err != nil {
		return err
	}
	for _, w := range d.cfg.Warnings {
		d.log.Warn("config warning", zap.String("warning", w))
	}
	return nil
}

// listeners are the bound sockets of a daemon.
type listeners struct {
	creds []net.Listener
	admin net.Listener
	// sts is the local STS API's listener (nil in aws mode).
	sts net.Listener
}

func (l *listeners) all() []net.Listener {
	out := append([]net.Listener(nil), l.creds...)
	if l.admin != nil {
		out = append(out, l.admin)
	}
	if l.sts != nil {
		out = append(out, l.sts)
	}
	return out
}

// bind binds the listeners of d.cfg.
func (d *daemon) bind() error {
	cfg := d.cfg
	for _, addr := range cfg.Listen {
		l, err := listen(addr)
		if err != nil {
			return err
		}
		d.lns.creds = append(d.lns.creds, l)
	}
	var err error
	if d.lns.admin, err = listen(cfg.AdminListen); err != nil {
		return err
	}
	if cfg.STS.Mode == config.ModeLocal {
		if d.lns.sts, err = listen(cfg.STS.Local.Listen); err != nil {
			return fmt.Errorf("sts.local.listen: %w", err)
		}
	}
	return nil
}

// build makes the source, the agent, the audit log, the IMDS front end and
// one HTTP server per listener; it starts nothing.
func (d *daemon) build(ctx context.Context) error {
	cfg, log := d.cfg, d.log
	src, err := d.source(ctx, cfg)
	if err != nil {
		return err
	}
	if d.agent, err = agent.New(agent.Options{Source: src, Logger: log.Named("agent"), Metrics: d.metrics, Node: hostNode{}}, cfg); err != nil {
		return err
	}
	d.metrics.CacheGauges(d.agent.Len, d.agent.EarliestExpiry)
	var auditor imds.Auditor
	if cfg.AuditLog != "" {
		if d.auditLog, err = audit.Open(audit.Options{Path: cfg.AuditLog}); err != nil {
			return err
		}
		auditor = d.auditLog
	}
	// Bearer JWTs are verified by one authenticator for the daemon's
	// life; each config gives it its providers.
	d.jwt = jwtauth.New(jwtauth.Options{Logger: log.Named("jwt")})
	if err := d.jwt.Apply(cfg); err != nil {
		return fmt.Errorf("identity providers: %w", err)
	}
	procs := d.workload(cfg)
	d.ctrs = &containers{log: log.Named("docker"), count: d.metrics.Identifications()}
	if err := d.ctrs.set(cfg); err != nil {
		return err
	}
	d.imds, err = imds.New(imds.Options{
		Agent: d.agent, Config: cfg, Logger: log.Named("imds"), Metrics: d.metrics,
		ListenAddrs: cfg.Listen, UIDLookup: uidLookup(), Socket: imds.SockDiagSocket(), Process: procs, Containers: d.ctrs, Audit: auditor, JWT: d.jwt,
	})
	if err != nil {
		return err
	}
	// Every listener is bounded (any local user may connect to any of
	// them): the credential listeners share most of the descriptors, with
	// untrusted connections closed first to make room; the admin and STS
	// listeners get small bounds of their own, so neither can starve the
	// other or the credential listeners.
	d.credConns = connlimit.New(connlimit.Options{
		Max: credentialConns(cfg), PerSource: cfg.Limits.MaxConnectionsPerSource,
		Source: imds.ConnSource, Logger: log.Named("conns"), Name: "credentials",
	})
	for _, l := range d.lns.creds {
		d.servers = append(d.servers, served{httpserver.New(httpserver.Options{
			Handler: d.imds.Handler(), ConnContext: d.imds.ConnContext, ConnState: d.credConns.ConnState, Logger: log,
		}), d.credConns.Listener(l)})
	}
	adminConns := connlimit.New(connlimit.Options{Max: adminConnections, Logger: log.Named("conns"), Name: "admin"})
	d.servers = append(d.servers, served{httpserver.New(httpserver.Options{
		Handler: d.adminHandler(), ConnState: adminConns.ConnState, Logger: log,
	}), adminConns.Listener(d.lns.admin)})
	if d.lns.sts != nil {
		stsAPI, err := localsts.NewServer(localsts.ServerOptions{Issuer: d.issuer, Logger: log.Named("sts")})
		if err != nil {
			return err
		}
		stsConns := connlimit.New(connlimit.Options{Max: min(stsConnections, connlimit.FDBound(0.1)), Logger: log.Named("conns"), Name: "sts"})
		d.servers = append(d.servers, served{httpserver.New(httpserver.Options{
			Handler: stsAPI.Handler(), ConnState: stsConns.ConnState, Logger: log,
		}), stsConns.Listener(d.lns.sts)})
	}
	return nil
}

// Connection bounds of the admin and STS listeners (scrapers and probes;
// SDK clients of the embedded STS).
const (
	adminConnections = 64
	stsConnections   = 512
)

// credentialConns is limits.max_connections, within the credential
// listeners' share of the descriptor limit.
func credentialConns(cfg *config.Config) int {
	n := cfg.Limits.MaxConnections
	if n <= 0 {
		n = connlimit.DefaultMax
	}
	return min(n, connlimit.FDBound(0.75))
}

// served is an HTTP server and the listener it serves.
type served struct {
	srv *http.Server
	l   net.Listener
}

// run serves until ctx ends or a server fails, then shuts every server
// down (bounded) and returns once everything it started has ended.
func (d *daemon) run(ctx context.Context, hooks serveHooks) error {
	log, mode := d.log, d.cfg.STS.Mode // d.cfg is the watcher's once it runs
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range d.servers {
		g.Go(func() error { return httpserver.Serve(s.srv, s.l) })
	}
	g.Go(func() error { return d.watcher.Run(gctx, d.apply, d.reloadFailed) })
	g.Go(func() error { return d.ctrs.run(gctx) })
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				d.watcher.Trigger()
				if d.auditLog != nil {
					// logrotate moved the file: continue in a new one.
					if err := d.auditLog.Reopen(); err != nil {
						log.Error("reopen audit log", zap.Error(err))
					}
				}
			}
		}
	})
	var bound []string
	for _, l := range d.lns.creds {
		bound = append(bound, l.Addr().String())
	}
	stsAddr := ""
	if d.lns.sts != nil {
		stsAddr = d.lns.sts.Addr().String()
	}
	log.Info("credsidecar serving",
		zap.Strings("listen", bound), zap.String("admin_listen", d.lns.admin.Addr().String()), zap.String("sts_local_listen", stsAddr),
		zap.String("sts_mode", mode), zap.String("version", version))
	d.ready.Store(true)
	notifyReady(log)
	g.Go(func() error {
		// Ready in the sense of the start-up goal: listeners bound and
		// serving, and the warm-up's fetches returned, so the first SDK
		// calls are hits.
		select {
		case <-d.agent.Warmed():
			log.Info("credsidecar ready", zap.Float64("startup_ms", float64(time.Since(d.started).Microseconds())/1e3),
				zap.Int("sessions_cached", d.agent.Len()))
		case <-gctx.Done():
		}
		return nil
	})
	g.Go(func() error { runWatchdog(gctx, log); return nil })
	g.Go(func() error { runIdleTrim(gctx, log.Named("memory")); return nil })
	if hooks.ready != nil {
		hooks.ready(bound, d.lns.admin.Addr().String(), stsAddr)
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		for _, s := range d.servers {
			s.srv.Shutdown(sctx)
		}
		return nil
	})
	return g.Wait()
}

// close releases what bind and build made, in reverse order; run has
// returned (or never started), so nothing uses them any more.
func (d *daemon) close() {
	if d.auditLog != nil {
		d.auditLog.Close()
	}
	if d.agent != nil {
		d.agent.Close()
	}
	if d.jwt != nil {
		d.jwt.Close()
	}
	for _, l := range d.lns.all() {
		l.Close() // already closed by Shutdown when served
	}
	if d.watcher != nil {
		d.watcher.Close()
	}
}

func listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			host, _, _ := net.SplitHostPort(addr)
			if ip, perr := netip.ParseAddr(host); perr == nil && ip.IsLinkLocalUnicast() {
				return nil, fmt.Errorf("listen on %s: %s is not configured on any interface; add it first, e.g. `ip link add credsidecar0 type dummy && ip link set credsidecar0 up && ip addr add %s/32 dev credsidecar0` (or enable systemd/credsidecar-linklocal.service)", addr, host, host)
			}
			return nil, fmt.Errorf("listen on %s: the address is not configured on any interface of this host", addr)
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// source builds the credential source of cfg's sts.mode.
func (d *daemon) source(ctx context.Context, cfg *config.Config) (agent.Source, error) {
	switch cfg.STS.Mode {
	case config.ModeLocal:
		var err error
		if d.issuer, err = localsts.NewIssuerFromConfig(cfg, clock.Real{}); err != nil {
			return nil, err
		}
		return localsts.NewSource(d.issuer), nil
	case config.ModeAWS:
		// The sidecar's own chain must never lead back to the sidecar.
		for _, v := range awssts.SelfReferencingEnv(cfg.Listen, os.Getenv) {
			d.log.Warn("ignoring an environment variable that points at this sidecar's own listener", zap.String("variable", v))
			os.Unsetenv(v)
		}
		src, err := awssts.New(ctx, awssts.Options{
			Region: cfg.Region, Endpoint: cfg.STS.Endpoint, Profile: cfg.STS.Profile,
			OwnListeners: cfg.Listen, Logger: d.log.Named("awssts"),
		})
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var ok atomic.Bool
		if err := src.CheckSource(cctx); err != nil {
			d.log.Error("the sidecar's own AWS credentials are not available yet; callers get 503 until they are", zap.Error(err))
		} else {
			ok.Store(true)
		}
		d.sourceOK = func() bool {
			if ok.Load() {
				return true
			}
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if src.CheckSource(cctx) == nil {
				ok.Store(true)
			}
			return ok.Load()
		}
		return src, nil
	default:
		return nil, fmt.Errorf("sts.mode %q is unknown", cfg.STS.Mode)
	}
}

// reloadFailed keeps the running config and says why the new one failed,
// every problem with its line.
func (d *daemon) reloadFailed(err error) {
	d.metrics.Reload("failure")
	d.log.Error("config reload failed; the running config stays", zap.Error(err))
}

// apply installs a new valid config: config.Reconcile decides what of it
// applies (listener addresses, audit_log, sts.mode and the aws-mode source
// need a restart: their changes are logged and the running values stay),
// then each component takes the result.
func (d *daemon) apply(next *config.Config) {
	r := config.Reconcile(d.cfg, next)
	for _, c := range r.Restart {
		d.log.Warn("a config change needs a restart; the running value stays",
			zap.String("key", c.Key), zap.String("running", c.Running), zap.String("new", c.New))
	}
	if r.Config == nil {
		d.log.Warn("an sts.mode change needs a restart; the new config is not applied")
		d.metrics.Reload("failure")
		return
	}
	cfg := r.Config
	// Every component that can refuse the config builds its part first,
	// and only once all have does any take it: a reload refused by one
	// (a JWKS file that does not parse, say) leaves the local STS's
	// account and the container lookup as they were, in step with the
	// agent's running config.
	var commits []func()
	if d.issuer != nil {
		c, err := d.issuer.Prepare(cfg)
		if err != nil {
			d.reloadFailed(err)
			return
		}
		commits = append(commits, c)
	}
	jwtCommit, err := d.jwt.Prepare(cfg)
	if err != nil {
		d.reloadFailed(fmt.Errorf("identity providers: %w", err))
		return
	}
	ctrCommit, err := d.ctrs.prepare(cfg)
	if err != nil {
		d.reloadFailed(err)
		return
	}
	for _, commit := range append(commits, jwtCommit, ctrCommit) {
		commit()
	}
	// Attestation reads more (the executable, its hash) before the config
	// that needs it is in force, and less only after: a connection
	// attested in between must not be described without what the new
	// config's clients match on.
	if d.procs != nil {
		d.procs.SetHash(d.procs.Hashing() || cfg.NeedsExeHash())
		d.procs.SetExeMatched(d.procs.ExeMatched() || cfg.NeedsExe())
	}
	d.agent.Apply(cfg)
	d.imds.Apply(cfg)
	if d.procs != nil {
		d.procs.SetHash(cfg.NeedsExeHash())
		d.procs.SetExeMatched(cfg.NeedsExe())
	}
	d.credConns.SetLimits(credentialConns(cfg), cfg.Limits.MaxConnectionsPerSource)
	d.cfg = cfg
	d.metrics.Reload("success")
	for _, w := range cfg.Warnings {
		d.log.Warn("config warning", zap.String("warning", w))
	}
	d.log.Info("config reloaded", zap.Int("roles", len(cfg.Roles)), zap.Int("clients", len(cfg.Clients)))
	releaseLoadGarbage(cfg)
}

func (d *daemon) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	// Ready: config loaded (it is, or serve would not run), listeners up,
	// and the source reachable or credentials cached.
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch {
		case !d.ready.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: listeners are starting\n"))
		case d.sourceOK != nil && !d.sourceOK() && d.agent.Len() == 0:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: the credential source is not reachable and nothing is cached\n"))
		default:
			w.Write([]byte("ready\n"))
		}
	})
	return mux
}
