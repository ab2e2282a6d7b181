package main

import (
	"net"
	"net/netip"

	"github.com/credsidecar/credsidecar/agent"
)

// hostNode tells the agent's warm-up what it can learn about this node
// cheaply: its interface addresses (one netlink dump), so clients whose
// source_cidrs cover none of them are not warmed here. Processes, uids and
// containers are left unknown: listing them would mean a /proc scan or an
// Engine API call per reload, and their clients are still warmed by
// recency and file order.
type hostNode struct{}

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

// UIDs is unknown here.
func (hostNode) UIDs() ([]uint32, bool) { return nil, false }

// Processes is unknown here.
func (hostNode) Processes() ([]agent.Process, bool) { return nil, false }

// Containers is unknown here.
func (hostNode) Containers() ([]agent.Container, bool) { return nil, false }
