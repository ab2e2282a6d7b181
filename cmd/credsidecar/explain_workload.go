package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/attest/docker"
	"github.com/credsidecar/credsidecar/attest/proc"
	"github.com/credsidecar/credsidecar/config"
)

// explainWorkload attests what --pid and --container name, as serve would,
// and fills in the defaults they imply (--uid: the process's owner;
// --addr: the container's address).
func explainWorkload(cfg *config.Config, f *explainFlags) error {
	if f.pid != 0 {
		a, _, err := proc.New(proc.Options{Hash: true})
		if err != nil {
			return fmt.Errorf("explain: --pid: %w", err)
		}
		f.proc, f.procErr = a.ByPIDHolding(f.pid, 0)
		if f.uid == "" {
			var st syscall.Stat_t
			if err := syscall.Stat("/proc/"+strconv.Itoa(f.pid), &st); err != nil {
				return fmt.Errorf("explain: --pid %d: %w", f.pid, err)
			}
			f.uid = strconv.FormatUint(uint64(st.Uid), 10)
		}
	}
	if f.container != "" {
		r, err := docker.New(docker.Options{Host: cfg.Docker.HostOrDefault()})
		if err != nil {
			return fmt.Errorf("explain: --container: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctr, addr, err := r.Inspect(ctx, f.container)
		if err != nil {
			return fmt.Errorf("explain: --container %s: %w", f.container, err)
		}
		f.ctr = ctr
		if f.addr == "127.0.0.1" && addr.IsValid() {
			f.addr = addr.String()
		}
	}
	return nil
}

// attach gives the caller the attested process and container.
func (f *explainFlags) attach(c *agent.Caller, w io.Writer) {
	if f.pid != 0 {
		p, err := f.proc, f.procErr
		c.Process = func() (*agent.Process, error) { return p, err }
		if err == nil {
			fmt.Fprintf(w, "pid %d: unit %q, user unit %q, cgroup %q, exe %q, sha256 %s\n", p.PID, p.Unit, p.UserUnit, p.Cgroup, p.Exe, p.ExeSHA256)
		}
	}
	if f.ctr != nil {
		ctr := f.ctr
		c.Container = func() (*agent.Container, error) { return ctr, nil }
		fmt.Fprintf(w, "container %s: image %q (%s), own labels %v\n", ctr.Name, ctr.Image, ctr.ImageID, ctr.Labels)
	}
}
