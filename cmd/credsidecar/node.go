package main

import (
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/attest/proc"
)

// hostNode tells the agent's warm-up what it can learn about this node
// cheaply: its interface addresses (one netlink dump), so clients whose
// source_cidrs cover none of them are not warmed here, and the uids that
// own a process (a stat per /proc entry, asked only when some client
// matches on uids). Processes and containers are left unknown: judging
// every unit or label client against every process or container costs
// clients × processes checks per reload, and those clients are still
// warmed by recency and file order.
type hostNode struct {
	// proc is where /proc is ("" = /proc).
	proc string
}

var _ agent.Node = hostNode{}

// Addrs returns the addresses of the node's interfaces (not ok when the
// system will not list them).
func (hostNode) Addrs() ([]netip.Addr, bool) {
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil, false
	}
	var out []netip.Addr
	for _, ifa := range ifas {
		if p, err := netip.ParsePrefix(ifa.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, true
}

// UIDs returns the uids owning a process here, from /proc (not ok when it
// cannot be listed, or hides other users' processes: a uid seen nowhere
// would then be judged absent when it is only hidden).
func (n hostNode) UIDs() ([]uint32, bool) {
	dir := n.proc
	if dir == "" {
		dir = "/proc"
	}
	if hidden, err := proc.HidesProcesses(dir); err != nil || hidden {
		return nil, false
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, false
	}
	seen := map[uint32]bool{}
	var out []uint32
	for _, name := range names {
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(dir+"/"+name, &st) != nil || seen[st.Uid] {
			continue // exited meanwhile, or known
		}
		seen[st.Uid] = true
		out = append(out, st.Uid)
	}
	return out, true
}

// Processes is unknown here.
func (hostNode) Processes() ([]agent.Process, bool) { return nil, false }

// Containers is unknown here.
func (hostNode) Containers() ([]agent.Container, bool) { return nil, false }
