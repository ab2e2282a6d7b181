package main

import (
	"net/netip"
	"slices"
	"testing"
)

// TestHostNodeAddrs: the warm-up sees the node's own addresses (loopback
// at least), and claims to know nothing else.
func TestHostNodeAddrs(t *testing.T) {
	addrs, ok := hostNode{}.Addrs()
	if !ok || !slices.Contains(addrs, netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("Addrs() = %v, %v; want loopback among them", addrs, ok)
	}
	if _, ok := (hostNode{}).UIDs(); ok {
		t.Error("UIDs claims to know")
	}
	if _, ok := (hostNode{}).Processes(); ok {
		t.Error("Processes claims to know")
	}
	if _, ok := (hostNode{}).Containers(); ok {
		t.Error("Containers claims to know")
	}
}
