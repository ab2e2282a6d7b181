package main

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

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

// containers builds the Docker resolver when a client matches on
// containers (the API is asked nothing otherwise). dockerd being down is a
// warning, not a failure: container conditions fail closed until it
// answers, and Run keeps retrying.
func (d *daemon) containers(cfg *config.Config) (imds.ContainerResolver, error) {
	if !cfg.NeedsContainers() {
		return nil, nil
	}
	count := d.metrics.Identifications()
	r, err := docker.New(docker.Options{
		Host: cfg.Docker.HostOrDefault(), Logger: d.log.Named("docker"),
		Outcome: func(o string) { count("container", o) },
	})
	if err != nil {
		return nil, fmt.Errorf("docker.host: %w", err)
	}
	d.docker = r
	return r, nil
}

// runDocker keeps the resolver's map until ctx ends.
func (d *daemon) runDocker(ctx context.Context) error {
	if d.docker == nil {
		return nil
	}
	return d.docker.Run(ctx, time.After)
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
