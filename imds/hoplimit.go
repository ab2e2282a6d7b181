package imds

import (
	"fmt"
	"net"
	"syscall"
)

// setHopLimit sets the IP TTL (IPv4) or hop limit (IPv6) of a connection's
// outgoing packets, like EC2's HttpPutResponseHopLimit: a token response
// then dies that many routers away, so a caller beyond the limit never gets
// one — its PUT times out rather than being refused.
func setHopLimit(c net.Conn, hops int) error {
	// Wrappers (the connection limiter's) expose the socket underneath.
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("hop limit: not a TCP connection")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return fmt.Errorf("hop limit: %w", err)
	}
	v6 := false
	if a, ok := tc.LocalAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
		v6 = true
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if v6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, hops)
		} else {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, hops)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("hop limit: set to %d: %w", hops, err)
	}
	return nil
}
