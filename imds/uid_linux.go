//go:build linux

package imds

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// SockDiagUID looks up the uid owning the client end of a TCP connection
// from this host with sock_diag, by both endpoints: matching on one address
// alone could hit an old TIME_WAIT socket of another user. Connections from
// other hosts have no local socket, so the lookup fails and uid conditions
// fail closed.
func SockDiagUID() UIDLookup {
	return func(local, remote netip.AddrPort) (uint32, error) {
		// The client's socket is the mirror image of ours.
		s, err := netlink.SocketGet(
			net.TCPAddrFromAddrPort(remote),
			net.TCPAddrFromAddrPort(local),
		)
		if err != nil {
			return 0, fmt.Errorf("sock_diag lookup of %s -> %s: %w", remote, local, err)
		}
		return s.UID, nil
	}
}
