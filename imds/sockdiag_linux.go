//go:build linux

package imds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Sizes of the kernel's sock_diag structures (include/uapi/linux/inet_diag.h).
const (
	// struct inet_diag_sockid: sport, dport (__be16); src[4], dst[4]
	// (__be32); if (__u32); cookie[2] (__u32).
	sockIDLen = 48
	// struct inet_diag_req_v2: family, protocol, ext, pad (__u8);
	// states (__u32); id.
	diagReqLen = 8 + sockIDLen
	// struct inet_diag_msg: family, state, timer, retrans (__u8); id;
	// expires, rqueue, wqueue, uid, inode (__u32).
	diagMsgLen = 4 + sockIDLen + 20
	// INET_DIAG_NOCOOKIE: match any socket cookie.
	noCookie = ^uint32(0)
)

// exactDiag asks sock_diag about one TCP socket by its 4-tuple, without
// NLM_F_DUMP: the kernel then answers with an O(1) hash lookup
// (inet_diag_cmd_exact → inet_diag_find_one_icsk) instead of walking every
// TCP socket of the host, which under a cold load means thousands of
// TIME_WAIT sockets per lookup. Netlink sockets are pooled: one request in
// flight on each, and opening one per lookup more than doubled its cost.
type exactDiag struct {
	mu   sync.Mutex
	idle []*diagConn // netlink sockets not in use
	seq  atomic.Uint32
}

// diagConn is a pooled netlink socket and its receive buffer: on the heap
// with it, not in exchange's frame, because a lookup runs at the bottom of
// a request's call chain, where a kilobyte more on the stack makes every
// new connection's goroutine copy its stack to a larger one.
type diagConn struct {
	fd  int
	buf [1024]byte
}

// maxIdleDiag bounds the pooled netlink sockets; more concurrent lookups
// than that open (and close) their own.
const maxIdleDiag = 8

// diagTimeout bounds the wait for the kernel's answer.
const diagTimeout = 2 * time.Second

func (d *exactDiag) socket() (*diagConn, error) {
	d.mu.Lock()
	if n := len(d.idle); n > 0 {
		c := d.idle[n-1]
		d.idle = d.idle[:n-1]
		d.mu.Unlock()
		return c, nil
	}
	d.mu.Unlock()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open a sock_diag netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind a sock_diag netlink socket: %w", err)
	}
	// The kernel answers at once; the timeout only keeps a lookup slot
	// from being held forever should it not.
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set a sock_diag netlink socket's timeout: %w", err)
	}
	return &diagConn{fd: fd}, nil
}

func (d *exactDiag) release(c *diagConn, ok bool) {
	d.mu.Lock()
	if ok && len(d.idle) < maxIdleDiag {
		d.idle = append(d.idle, c)
		c = nil
	}
	d.mu.Unlock()
	if c != nil {
		unix.Close(c.fd) // broken (a reply may still be queued) or surplus
	}
}

// get returns the kernel's record of client socket p, whose 4-tuple it
// checks against p: the kernel's lookup falls back to a listening socket
// when no connected one matches.
func (d *exactDiag) get(p sockPair) (sockOwner, error) {
	req, err := diagRequest(p, d.seq.Add(1))
	if err != nil {
		return sockOwner{}, err
	}
	seq := binary.NativeEndian.Uint32(req[8:12])
	// Only "no such socket" is an answer; a socket that cannot be opened,
	// a timeout or ENOBUFS say nothing about the client's socket, and are
	// worth asking again (as the batch path reports them too).
	c, err := d.socket()
	if err != nil {
		return sockOwner{}, fmt.Errorf("%w: %v", ErrUIDBusy, err)
	}
	o, err := exchange(c, req, seq)
	d.release(c, err == nil || errors.Is(err, errNoSocket))
	if errors.Is(err, errNoSocket) {
		return sockOwner{}, err
	}
	if err != nil {
		return sockOwner{}, fmt.Errorf("%w: %v", ErrUIDBusy, err)
	}
	if o.pair != (sockPair{plainPort(p.client), plainPort(p.server)}) {
		return sockOwner{}, fmt.Errorf("sock_diag answered for %s -> %s (a listener?): %w", o.pair.client, o.pair.server, errNoSocket)
	}
	return o.sockOwner, nil
}

// diagOwner is one inet_diag_msg: the socket's 4-tuple (unmapped, as the
// socket sees it) and its owner.
type diagOwner struct {
	sockOwner
	pair sockPair
}

// diagRequest builds the netlink message: nlmsghdr, then inet_diag_req_v2
// for IPPROTO_TCP in any state, the socket's local end (the client) as
// source. Both ends IPv4 (or v4-mapped) ask as AF_INET: the kernel's IPv4
// lookup also finds dual-stack IPv6 sockets connected to IPv4 addresses.
func diagRequest(p sockPair, seq uint32) ([]byte, error) {
	c, s := unmapPort(p.client), unmapPort(p.server)
	var family uint8
	switch {
	case c.Addr().Is4() && s.Addr().Is4():
		family = unix.AF_INET
	case c.Addr().Is6() && s.Addr().Is6():
		family = unix.AF_INET6
	default:
		return nil, fmt.Errorf("sock_diag: %s and %s are not of one address family", c, s)
	}
	ifindex, err := zoneIndex(c.Addr().Zone())
	if err != nil {
		return nil, err
	}
	b := make([]byte, unix.NLMSG_HDRLEN+diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST) // no NLM_F_DUMP: the exact lookup
	ne.PutUint32(b[8:], seq)
	r := b[unix.NLMSG_HDRLEN:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], ^uint32(0)) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], c.Port())
	binary.BigEndian.PutUint16(id[2:], s.Port())
	putAddr(id[4:20], c.Addr())
	putAddr(id[20:36], s.Addr())
	ne.PutUint32(id[36:], ifindex)
	ne.PutUint32(id[40:], noCookie)
	ne.PutUint32(id[44:], noCookie)
	return b, nil
}

// putAddr writes an address as idiag_src/idiag_dst hold it: an IPv4
// address in the first word, an IPv6 one in all four.
func putAddr(dst []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(dst, v[:])
		return
	}
	v := a.As16()
	copy(dst, v[:])
}

// zoneIndex is the interface index of an IPv6 zone: a link-local client
// socket is bound to its interface, and the kernel's lookup matches a bound
// socket only when asked with that index.
func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("sock_diag: zone %q: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}

// exchange sends req on netlink socket c and reads the answer with
// sequence number seq: one inet_diag_msg, or an NLMSG_ERROR (ENOENT when
// no socket has the 4-tuple).
func exchange(c *diagConn, req []byte, seq uint32) (diagOwner, error) {
	if err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return diagOwner{}, fmt.Errorf("sock_diag send: %w", err)
	}
	buf := c.buf[:]
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return diagOwner{}, fmt.Errorf("sock_diag receive: %w", err)
		}
		o, done, err := parseDiag(buf[:n], seq)
		if done || err != nil {
			return o, err
		}
	}
}

// parseDiag reads the netlink messages in b, skipping any whose sequence
// number is not seq; done says whether the answer to seq was among them.
func parseDiag(b []byte, seq uint32) (o diagOwner, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(ne.Uint32(b[0:]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return diagOwner{}, true, fmt.Errorf("sock_diag: malformed netlink message (length %d of %d)", l, len(b))
		}
		typ, mseq, body := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[unix.NLMSG_HDRLEN:l]
		b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		if mseq != seq {
			continue // the late answer to an earlier request
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(body) < 4 {
				return diagOwner{}, true, errors.New("sock_diag: short netlink error")
			}
			errno := unix.Errno(-int32(ne.Uint32(body)))
			if errno == 0 {
				continue // an acknowledgement
			}
			if errno == unix.ENOENT {
				return diagOwner{}, true, errNoSocket
			}
			return diagOwner{}, true, fmt.Errorf("sock_diag: %w", errno)
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(body) < diagMsgLen {
				return diagOwner{}, true, fmt.Errorf("sock_diag: short inet_diag_msg (%d bytes)", len(body))
			}
			return parseDiagMsg(body), true, nil
		}
	}
	return diagOwner{}, false, nil
}

// parseDiagMsg reads the fixed layout of struct inet_diag_msg (kernel data
// about a socket; its uid is what the kernel recorded at socket creation).
func parseDiagMsg(m []byte) diagOwner {
	ne := binary.NativeEndian
	id := m[4:]
	addr := func(b []byte) netip.Addr {
		if m[0] == unix.AF_INET {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16([16]byte(b[:16])).Unmap()
	}
	src := netip.AddrPortFrom(addr(id[4:20]), binary.BigEndian.Uint16(id[0:]))
	dst := netip.AddrPortFrom(addr(id[20:36]), binary.BigEndian.Uint16(id[2:]))
	tail := m[4+sockIDLen:]
	return diagOwner{
		sockOwner: sockOwner{State: m[1], UID: ne.Uint32(tail[12:]), Inode: ne.Uint32(tail[16:])},
		pair:      sockPair{client: src, server: dst},
	}
}
