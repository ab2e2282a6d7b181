package main

import (
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// TestHostNodeAddrs: the warm-up sees the node's own addresses (loopback
// at least), and claims to know no processes or containers.
func TestHostNodeAddrs(t *testing.T) {
	addrs, ok := hostNode{}.Addrs()
	if !ok || !slices.Contains(addrs, netip.MustParseAddr("127.0.0.1")) {
		t.Fatalf("Addrs() = %v, %v; want loopback among them", addrs, ok)
	}
	if _, ok := (hostNode{}).Processes(); ok {
		t.Error("Processes claims to know")
	}
	if _, ok := (hostNode{}).Containers(); ok {
		t.Error("Containers claims to know")
	}
}

// TestHostNodeUIDs: the uids owning a process here include this test's own
// and, as root, that of a process started as another uid; a /proc that
// lists nothing is known to hold no uid, one that cannot be read is unknown.
func TestHostNodeUIDs(t *testing.T) {
	want := uint32(os.Geteuid())
	if os.Geteuid() == 0 {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4831, Gid: 4831}}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		want = 4831
	}
	uids, ok := hostNode{}.UIDs()
	if !ok || !slices.Contains(uids, want) || !slices.Contains(uids, uint32(os.Geteuid())) {
		t.Fatalf("UIDs() = %v, %v; want %d and %d among them", uids, ok, want, os.Geteuid())
	}
	if uids, ok := (hostNode{proc: t.TempDir()}).UIDs(); !ok || len(uids) != 0 {
		t.Fatalf("an empty /proc: UIDs() = %v, %v", uids, ok)
	}
	if _, ok := (hostNode{proc: "/nonexistent"}).UIDs(); ok {
		t.Fatal("an unreadable /proc claims to know")
	}
}
