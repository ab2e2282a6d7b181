package imds

import (
	"net/http"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/audit"
)

// audit records one credential vend when the audit log is on. No secret
// reaches it: the key id only by its last four characters.
func (s *Server) audit(r *http.Request, ep string, c *agent.Caller, client, role string, creds *agent.Credentials, status int, result string) {
	if s.auditor == nil {
		return
	}
	rec := audit.Record{
		Time: s.clk.Now(), Endpoint: ep, Client: client, Addr: c.Addr.String(), UID: -1,
		Role: role, Status: status, Result: result,
	}
	if ci, ok := r.Context().Value(connKey{}).(*connInfo); ok {
		rec.UID = ci.peekUID()
	}
	if creds != nil {
		rec.RoleARN = creds.RoleARN
		rec.AssumedRoleARN = creds.AssumedRoleARN
		rec.KeyIDLast4 = creds.KeyIDSuffix()
		rec.Expiration = creds.Expiration
	}
	s.auditor.Write(rec)
}
