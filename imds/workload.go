package imds

import (
	"errors"
	"net/netip"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
)

// SocketOwner is what sock_diag says of an established client socket held
// by a process: its owner's uid and its inode.
type SocketOwner struct {
	UID   uint32
	Inode uint64
}

// SocketLookup returns the owner of the client socket of a TCP connection
// from this host, identified by both of its endpoints.
type SocketLookup func(local, remote netip.AddrPort) (SocketOwner, error)

// ProcessAttestor finds the process holding a client socket (attest/proc).
type ProcessAttestor interface {
	Attest(uid uint32, inode uint64) (*agent.Process, error)
}

// socketCloser is told when an attested connection closes (attest/proc's
// Attestor): where its holder's next socket most likely is.
type socketCloser interface {
	Closed(uid uint32, inode uint64)
}

// ContainerResolver names the container an address belongs to (attest/docker).
type ContainerResolver interface {
	// Resolve names the container of the connection from remote to local.
	Resolve(local, remote netip.AddrPort) (*agent.Container, error)
}

var (
	errNoAttestor = errors.New("process attestation is not configured")
	errNoDocker   = errors.New("container lookup is not configured")
)

// workloadGetters gives the connection's Caller its lazy process and
// container getters, each computed at most once per connection and only
// when the agent asks (some client's match or template needs it).
func (s *Server) workloadGetters(ci *connInfo) {
	ci.caller.Process = func() (*agent.Process, error) {
		ci.procOnce.Do(func() {
			if s.proc == nil {
				ci.procErr = errNoAttestor
				return
			}
			if _, err := ci.lookup(); err != nil {
				ci.procErr = err
				return
			}
			ci.proc, ci.procErr = s.proc.Attest(ci.uid, ci.inode)
			if ci.procErr != nil {
				s.log.Debug("process attestation failed: process conditions fail closed for this connection", zap.Error(ci.procErr))
				return
			}
			sc, ok := s.proc.(socketCloser)
			c, hooks := ci.conn.(interface{ OnClose(func()) })
			if ok && hooks {
				uid, inode := ci.uid, ci.inode
				c.OnClose(func() { sc.Closed(uid, inode) })
			}
		})
		return ci.proc, ci.procErr
	}
	ci.caller.Container = func() (*agent.Container, error) {
		ci.ctrOnce.Do(func() {
			if s.containers == nil {
				ci.ctrErr = errNoDocker
				return
			}
			ci.ctr, ci.ctrErr = s.containers.Resolve(ci.local, ci.remote)
			if ci.ctrErr != nil {
				s.log.Debug("container lookup failed: container conditions fail closed for this connection", zap.Error(ci.ctrErr))
			}
		})
		return ci.ctr, ci.ctrErr
	}
}
