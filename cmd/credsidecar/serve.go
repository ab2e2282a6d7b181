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
	"github.com/credsidecar/credsidecar/audit"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/imds"
	"github.com/credsidecar/credsidecar/internal/clock"
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

// daemon is the wired process: what a reload touches.
type daemon struct {
	log     *zap.Logger
	cfg     *config.Config
	agent   *agent.Agent
	imds    *imds.Server
	issuer  *localsts.Issuer
	metrics *metrics.Set
	// auditLog is the open audit file (nil when audit_log is off).
	auditLog *audit.Log
	// ready is set once every listener is up.
	ready atomic.Bool
	// sourceOK reports whether the credential source is usable: always in
	// local mode; in aws mode once the sidecar's own credentials resolved.
	sourceOK func() bool
}

func serve(ctx context.Context, path string, log *zap.Logger, hooks serveHooks) error {
	watcher, cfg, err := config.NewWatcher(path, log.Named("config"), config.WatcherOptions{})
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("config warning", zap.String("warning", w))
	}
	d := &daemon{log: log, cfg: cfg, metrics: metrics.New()}

	// Bind everything before anything else (no credentials are minted for
	// a daemon that cannot serve them), so a bad address fails start-up as
	// a whole with a clear error.
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	var bound []string
	for _, addr := range cfg.Listen {
		l, err := listen(addr)
		if err != nil {
			closeAll()
			return err
		}
		lns = append(lns, l)
		bound = append(bound, l.Addr().String())
	}
	adminLn, err := listen(cfg.AdminListen)
	if err != nil {
		closeAll()
		return err
	}
	lns = append(lns, adminLn)
	var stsLn net.Listener
	if cfg.STS.Mode == config.ModeLocal {
		if stsLn, err = listen(cfg.STS.Local.Listen); err != nil {
			closeAll()
			return fmt.Errorf("sts.local.listen: %w", err)
		}
		lns = append(lns, stsLn)
	}

	src, err := d.source(cfg)
	if err != nil {
		closeAll()
		return err
	}
	d.agent, err = agent.New(agent.Options{Source: src, Logger: log.Named("agent"), Metrics: d.metrics}, cfg)
	if err != nil {
		closeAll()
		return err
	}
	defer d.agent.Close()
	d.metrics.CacheGauges(d.agent.Len, d.agent.EarliestExpiry)
	var auditor imds.Auditor
	if cfg.AuditLog != "" {
		al, err := audit.Open(cfg.AuditLog)
		if err != nil {
			closeAll()
			return err
		}
		defer al.Close()
		d.auditLog, auditor = al, al
	}
	d.imds, err = imds.New(imds.Options{
		Agent: d.agent, Logger: log.Named("imds"), Metrics: d.metrics,
		ListenAddrs: cfg.Listen, UIDLookup: uidLookup(), Audit: auditor,
	})
	if err != nil {
		closeAll()
		return err
	}

	var servers []*http.Server
	g, gctx := errgroup.WithContext(ctx)
	for _, l := range lns[:len(cfg.Listen)] {
		srv := imds.NewHTTPServer(d.imds.Handler(), d.imds.ConnContext, log)
		servers = append(servers, srv)
		g.Go(func() error { return serveOn(srv, l) })
	}
	admin := imds.NewHTTPServer(d.adminHandler(), nil, log)
	servers = append(servers, admin)
	g.Go(func() error { return serveOn(admin, adminLn) })
	stsAddr := ""
	if stsLn != nil {
		stsAPI, err := localsts.NewServer(localsts.ServerOptions{Issuer: d.issuer, Logger: log.Named("sts")})
		if err != nil {
			closeAll()
			return err
		}
		stsSrv := imds.NewHTTPServer(stsAPI.Handler(), nil, log)
		servers = append(servers, stsSrv)
		g.Go(func() error { return serveOn(stsSrv, stsLn) })
		stsAddr = stsLn.Addr().String()
	}

	g.Go(func() error { return watcher.Run(gctx, d.apply, d.reloadFailed) })
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				watcher.Trigger()
				if d.auditLog != nil {
					// logrotate moved the file: continue in a new one.
					if err := d.auditLog.Reopen(); err != nil {
						log.Error("reopen audit log", zap.Error(err))
					}
				}
			}
		}
	})
	log.Info("credsidecar serving",
		zap.Strings("listen", bound), zap.String("admin_listen", adminLn.Addr().String()), zap.String("sts_local_listen", stsAddr),
		zap.String("sts_mode", cfg.STS.Mode), zap.String("version", version))
	d.ready.Store(true)
	notifyReady(log)
	g.Go(func() error { runWatchdog(gctx, log); return nil })
	if hooks.ready != nil {
		hooks.ready(bound, adminLn.Addr().String(), stsAddr)
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		for _, s := range servers {
			s.Shutdown(sctx)
		}
		return nil
	})
	return g.Wait()
}

func serveOn(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	return nil
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
func (d *daemon) source(cfg *config.Config) (agent.Source, error) {
	switch cfg.STS.Mode {
	case config.ModeLocal:
		key, err := signingKey(cfg.STS.Local.SigningKeyFile)
		if err != nil {
			return nil, err
		}
		acct, err := localsts.NewAccount(cfg, localsts.RandomUserKeys)
		if err != nil {
			return nil, fmt.Errorf("local sts: %w", err)
		}
		d.issuer, err = localsts.NewIssuer(key, clock.Real{}, acct)
		if err != nil {
			return nil, err
		}
		return localsts.NewSource(d.issuer), nil
	case config.ModeAWS:
		// The sidecar's own chain must never lead back to the sidecar.
		for _, v := range awssts.SelfReferencingEnv(cfg.Listen, os.Getenv) {
			d.log.Warn("ignoring an environment variable that points at this sidecar's own listener", zap.String("variable", v))
			os.Unsetenv(v)
		}
		src, err := awssts.New(context.Background(), awssts.Options{
			Region: cfg.Region, Endpoint: cfg.STS.Endpoint, Profile: cfg.STS.Profile,
			OwnListeners: cfg.Listen, Logger: d.log.Named("awssts"),
		})
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var ok atomic.Bool
		if err := src.CheckSource(ctx); err != nil {
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

// signingKey reads the local STS signing key, or makes a random one
// (issued credentials then stop verifying after a restart).
func signingKey(path string) ([]byte, error) {
	if path == "" {
		return localsts.RandomKey(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sts.local.signing_key_file: %w", err)
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("sts.local.signing_key_file %s holds %d bytes; it needs at least 32 (e.g. head -c 32 /dev/urandom > %s)", path, len(b), path)
	}
	return b, nil
}

// reloadFailed keeps the running config and says why the new one failed,
// every problem with its line.
func (d *daemon) reloadFailed(err error) {
	d.metrics.Reload("failure")
	d.log.Error("config reload failed; the running config stays", zap.Error(err))
}

// apply installs a new valid config. Listener addresses and sts.mode need a
// restart: their changes are logged and the old values stay.
func (d *daemon) apply(cfg *config.Config) {
	old := d.cfg
	if fmt.Sprint(cfg.Listen) != fmt.Sprint(old.Listen) || cfg.AdminListen != old.AdminListen || cfg.STS.Local.Listen != old.STS.Local.Listen {
		d.log.Warn("listener address changes need a restart; the rest of the new config is applied")
	}
	if cfg.AuditLog != old.AuditLog {
		d.log.Warn("an audit_log path change needs a restart; the running audit log stays", zap.String("running", old.AuditLog))
	}
	if cfg.STS.Mode == config.ModeAWS && (cfg.STS.Endpoint != old.STS.Endpoint || cfg.STS.Profile != old.STS.Profile || cfg.Region != old.Region) {
		// The aws-mode source is built once; keep its settings so the
		// sessions are not dropped only to be fetched from the same place.
		d.log.Warn("sts.endpoint, sts.profile and region changes need a restart in aws mode; the rest of the new config is applied")
		cfg.STS.Endpoint, cfg.STS.Profile = old.STS.Endpoint, old.STS.Profile
	}
	if cfg.STS.Mode != old.STS.Mode {
		d.log.Warn("an sts.mode change needs a restart; the new config is not applied", zap.String("running", old.STS.Mode), zap.String("new", cfg.STS.Mode))
		d.metrics.Reload("failure")
		return
	}
	if cfg.STS.Mode == config.ModeLocal && d.issuer != nil {
		acct, err := localsts.NewAccount(cfg, localsts.RandomUserKeys)
		if err != nil {
			d.reloadFailed(err)
			return
		}
		if cfg.STS.Local.SigningKeyFile != "" {
			key, err := signingKey(cfg.STS.Local.SigningKeyFile)
			if err == nil {
				err = d.issuer.RotateKey(key)
			}
			if err != nil {
				d.reloadFailed(err)
				return
			}
		}
		d.issuer.SetAccount(acct)
	}
	d.agent.Apply(cfg)
	d.imds.Apply(cfg)
	d.cfg = cfg
	d.metrics.Reload("success")
	d.log.Info("config reloaded", zap.Int("roles", len(cfg.Roles)), zap.Int("clients", len(cfg.Clients)))
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
