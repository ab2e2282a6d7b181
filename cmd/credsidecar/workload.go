package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/attest/docker"
	"github.com/credsidecar/credsidecar/attest/proc"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/imds"
)

// workload builds the attestors of the daemon: process attestation always
// (it costs a read of PID 1's cgroup until a client needs it), with what
// will make it fail closed logged when the config uses it.
func (d *daemon) workload(cfg *config.Config) imds.ProcessAttestor {
	count := d.metrics.Identifications()
	pa, warnings, err := proc.New(proc.Options{
		Hash:       cfg.NeedsExeHash(),
		ExeMatched: cfg.NeedsExe(),
		Outcome:    func(o string) { count("process", o) },
	})
	if err != nil {
		if cfg.NeedsProcesses() {
			d.log.Warn("process attestation is unavailable: systemd_unit, cgroup and exe conditions fail closed", zap.Error(err))
		}
		return nil
	}
	d.procs = pa
	if cfg.NeedsProcesses() {
		for _, w := range warnings {
			d.log.Warn("process attestation", zap.String("warning", w))
		}
		d.log.Info("process attestation ready", zap.String("systemd_root", pa.Root()))
	}
	return pa
}

// containers is the daemon's container lookup: it keeps a Docker resolver
// running exactly while some client matches on containers, on the
// docker.host of the current config, so a reload that adds the first
// container client (or moves docker.host) takes effect without a restart,
// and a config without container conditions asks the API nothing.
type containers struct {
	log   *zap.Logger
	count func(kind, outcome string)

	mu      sync.Mutex
	parent  context.Context // set by run; nil before
	host    string          // the running resolver's docker.host
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the running resolver's Run returned
	cur     atomic.Pointer[docker.Resolver]
}

// errNoContainerClient is the lookup's answer while no client matches on
// containers: container conditions fail closed (none exist to pass).
var errNoContainerClient = errors.New("container lookup is off: no client matches on container")

// Resolve names the container of the connection from remote to local,
// through the running resolver.
func (c *containers) Resolve(local, remote netip.AddrPort) (*agent.Container, error) {
	r := c.cur.Load()
	if r == nil {
		return nil, errNoContainerClient
	}
	return r.Resolve(local, remote)
}

// set makes the running resolver follow cfg: prepare, then its commit.
func (c *containers) set(cfg *config.Config) error {
	commit, err := c.prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// prepare builds the resolver cfg needs and returns the function that
// puts it in force: started when a client matches on containers, replaced
// when docker.host changed, stopped when no client needs it. A resolver
// built before run starts runs with it. Until commit is called the
// running resolver stays, so a reload another component refuses changes
// nothing here; prepare and commit are not for concurrent use with
// another prepare (the daemon applies one reload at a time).
func (c *containers) prepare(cfg *config.Config) (commit func(), err error) {
	c.mu.Lock()
	host := c.host
	c.mu.Unlock()
	want := ""
	if cfg.NeedsContainers() {
		want = cfg.Docker.HostOrDefault()
	}
	if want == host { // (a resolver runs exactly while host is set)
		return func() {}, nil
	}
	var next *docker.Resolver
	if want != "" {
		r, err := docker.New(docker.Options{
			Host: want, Logger: c.log,
			Outcome: func(o string) { c.count("container", o) },
		})
		if err != nil {
			return nil, fmt.Errorf("docker.host: %w", err)
		}
		next = r
	}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stopLocked()
		c.host = want
		c.cur.Store(next)
		if next != nil && c.parent != nil {
			c.startLocked(next)
		}
	}, nil
}

// startLocked runs r until it is stopped or the daemon ends.
func (c *containers) startLocked(r *docker.Resolver) {
	ctx, cancel := context.WithCancel(c.parent)
	done := make(chan struct{})
	c.cancel, c.stopped = cancel, done
	go func() {
		defer close(done)
		r.Run(ctx, time.After)
	}()
}

// stopLocked stops the running resolver and waits for it.
func (c *containers) stopLocked() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.stopped
	c.cancel, c.stopped = nil, nil
}

// run keeps the resolver (if any) running until ctx ends, and lets later
// reloads start one.
func (c *containers) run(ctx context.Context) error {
	c.mu.Lock()
	c.parent = ctx
	if r := c.cur.Load(); r != nil {
		c.startLocked(r)
	}
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
	c.parent = nil
	return nil
}

// dockerReachable is check-config's warning when a client matches on
// containers and the Engine API does not answer ("" otherwise): not an
// error, since serve starts anyway (those clients fail closed) and recovers
// when dockerd comes back.
func dockerReachable(cfg *config.Config) string {
	if !cfg.NeedsContainers() {
		return ""
	}
	r, err := docker.New(docker.Options{Host: cfg.Docker.HostOrDefault()})
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		return fmt.Sprintf("clients match on container, but the Docker API at %s does not answer (%v): they fail closed until it does", cfg.Docker.HostOrDefault(), err)
	}
	return ""
}
