package imds

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/audit"
)

// refuse answers err and, on an audited endpoint, records the refusal:
// the adapter's early exits (Host, rate limit, IMDSv2 token policy).
func (s *Server) refuse(w http.ResponseWriter, ep endpoint, start time.Time, q call, id agent.Identity, err error) {
	status := s.fail(w, ep.record, start, err)
	if ep.flags&audited != 0 {
		if q.c == nil {
			// Refused before the caller was built (the Host check):
			// building it costs no lookup.
			q.c = s.caller(q.r, q.ci, ep.flags&bearer != 0)
		}
		s.audit(q, ep.name, id, nil, status, err)
	}
}

// audit records one answer of a credential endpoint when the audit log is
// on: a vend with the full access key id and the session ARN, or a refusal
// with the role asked for, the public code and the reason. No secret
// reaches it: the record has no field for a secret key, a session token or
// a bearer token (only whether one was presented).
func (s *Server) audit(q call, ep string, id agent.Identity, creds *agent.Credentials, status int, err error) {
	if s.auditor == nil {
		return
	}
	ci := q.ci
	c := q.c
	rec := audit.Record{
		Time: s.clk.Now(), Endpoint: ep, Client: id.Client(),
		Caller: audit.Caller{Addr: c.Addr.String(), UID: -1, Token: c.HasToken, Subject: id.Subject()},
		Role:   q.role, Status: status, Result: resultOf(err),
	}
	if ci != nil {
		// Never a lookup of the audit's own: only a uid the trust decision
		// or the rate limiter already looked up.
		rec.Caller.UID = ci.peekUID()
	}
	if rec.Role == "" {
		rec.Role = id.DefaultRole()
	}
	if creds != nil {
		rec.RoleARN = creds.RoleARN
		rec.AssumedRoleARN = creds.AssumedRoleARN
		rec.AccessKeyID = creds.AccessKeyID
		rec.Expiration = creds.Expiration
	}
	if err != nil {
		rec.Reason = reasonOf(err)
		rec.Key = auditKey(rec.Caller.UID, c.Addr)
	}
	s.auditor.Write(rec)
}

// auditKey is the key a refusal is rate-limited by in the audit file: the
// uid for a local caller whose uid is known (a user cannot mint uids but
// has all of 127.0.0.0/8 to choose addresses from); otherwise the address
// prefix — IPv4 /32, except loopback, which is one key (the uid was not
// looked up, so any local user may be behind any loopback address), and
// IPv6 /64. The audit never looks a uid up for this: where neither a uid
// condition nor the rate limiter asked for it, loopback refusals share one
// budget, which bounds the file as well (vends are never dropped).
func auditKey(uid int64, addr netip.Addr) string {
	if uid >= 0 {
		return "uid:" + strconv.FormatInt(uid, 10)
	}
	return networkKey(addr)
}

// reasonOf is a refusal's reason in the audit record: finer than the
// public code (which tells, say, a missing IMDSv2 token from a bad one
// only in its message), from a fixed vocabulary.
func reasonOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae == errHost:
			return "host_not_allowed"
		case ae == errV2Needed:
			return "imdsv2_required"
		case ae == errBadIMDSv2:
			return "imds_token_invalid"
		case ae == errNoRole:
			return "role_not_allowed"
		case ae.status == http.StatusTooManyRequests:
			return "rate_limited"
		}
		return "refused"
	}
	var ge *agent.Error
	if errors.As(err, &ge) {
		switch ge.Kind {
		case agent.KindNoClient:
			return "no_client"
		case agent.KindBadToken:
			return "token_matches_no_client"
		case agent.KindRoleNotAllowed:
			return "role_not_allowed"
		case agent.KindSourceRejected:
			return "sts_rejected"
		case agent.KindUnavailable:
			return "sts_unavailable"
		}
	}
	return "unavailable"
}
