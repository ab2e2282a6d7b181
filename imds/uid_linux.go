//go:build linux

package imds

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SockDiagUID is SockDiagSocket's uid alone.
func SockDiagUID() UIDLookup {
	look := SockDiagSocket()
	return func(local, remote netip.AddrPort) (uint32, error) {
		o, err := look(local, remote)
		return o.UID, err
	}
}

// SockDiagSocket looks up the uid owning the client end of a TCP connection
// from this host with sock_diag, by both endpoints: matching on one address
// alone could hit an old TIME_WAIT socket of another user. Connections from
// other hosts have no local socket, so the lookup fails and uid conditions
// fail closed.
// The same lookup gives the socket's inode, from which attest/proc finds
// the owning process.
func SockDiagSocket() SocketLookup {
	// Lookups ask the kernel for the one socket (an O(1) hash lookup),
	// directly or in a small batch; only a batch bigger than the
	// coalescer's maxExact, under a flood, dumps.
	dumpTCP := netlink.SocketDiagTCP
	exact := &exactDiag{}
	get := exact.get
	dump := func(want map[sockPair]bool) (map[sockPair]sockOwner, error) {
		got := map[sockPair]sockOwner{}
		var incomplete bool
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			socks, err := dumpTCP(fam)
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				incomplete = true
			} else if err != nil {
				return nil, fmt.Errorf("sock_diag dump: %w", err)
			}
			for _, s := range socks {
				src, _ := netip.AddrFromSlice(s.ID.Source)
				dst, _ := netip.AddrFromSlice(s.ID.Destination)
				p := sockPair{netip.AddrPortFrom(src.Unmap(), s.ID.SourcePort), netip.AddrPortFrom(dst.Unmap(), s.ID.DestinationPort)}
				if want[p] {
					got[p] = sockOwner{State: s.State, UID: s.UID, Inode: s.INode}
				}
			}
		}
		if incomplete {
			return got, errDumpIncomplete
		}
		return got, nil
	}
	co := newUIDCoalescer(get, dump)
	return func(local, remote netip.AddrPort) (SocketOwner, error) {
		// The client's socket is the mirror image of ours.
		s, err := co.lookup(sockPair{client: remote, server: local})
		if err != nil {
			return SocketOwner{}, fmt.Errorf("sock_diag lookup of %s -> %s: %w", remote, local, err)
		}
		// Only an established socket that a process still holds (inode
		// != 0) has a meaningful owner. A client that closed right after
		// sending leaves an orphaned FIN-WAIT/TIME-WAIT socket, which the
		// kernel reports as uid 0: believing it would serve the request
		// as root.
		if s.State != netlink.TCP_ESTABLISHED || s.Inode == 0 {
			return SocketOwner{}, fmt.Errorf("sock_diag lookup of %s -> %s: the client socket is %s and owned by no process (inode %d); its uid is unknown", remote, local, tcpState(s.State), s.Inode)
		}
		return SocketOwner{UID: s.UID, Inode: uint64(s.Inode)}, nil
	}
}

func tcpState(st uint8) string {
	names := map[uint8]string{
		netlink.TCP_ESTABLISHED: "ESTABLISHED", netlink.TCP_SYN_SENT: "SYN_SENT", netlink.TCP_SYN_RECV: "SYN_RECV",
		netlink.TCP_FIN_WAIT1: "FIN_WAIT1", netlink.TCP_FIN_WAIT2: "FIN_WAIT2", netlink.TCP_TIME_WAIT: "TIME_WAIT",
		netlink.TCP_CLOSE: "CLOSE", netlink.TCP_CLOSE_WAIT: "CLOSE_WAIT", netlink.TCP_LAST_ACK: "LAST_ACK",
		netlink.TCP_LISTEN: "LISTEN", netlink.TCP_CLOSING: "CLOSING",
	}
	if n, ok := names[st]; ok {
		return n
	}
	return fmt.Sprintf("in state %d", st)
}
