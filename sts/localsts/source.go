package localsts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/credsidecar/credsidecar/agent"
)

// Source is local mode's agent.Source: it calls the issuer in process, as
// the sidecar's own user (sts.local.caller), or as the previous hop's
// session for role chaining.
type Source struct {
	issuer *Issuer
}

var _ agent.Source = (*Source)(nil)

// NewSource returns a Source backed by issuer.
func NewSource(issuer *Issuer) *Source { return &Source{issuer: issuer} }

// Retrieve assumes req's role through the same validate-and-authorize path
// as the Query API.
func (s *Source) Retrieve(ctx context.Context, req agent.Request) (*agent.Credentials, error) {
	if req.WebIdentityTokenFile != "" {
		return s.retrieveWebIdentity(ctx, req)
	}
	acct := s.issuer.Account()
	caller := UserPrincipal(acct, acct.Caller)
	if req.Via != nil {
		claims, _, err := s.issuer.Verify(req.Via.AccessKeyID, req.Via.SessionToken)
		if err != nil {
			return nil, sourceError(err)
		}
		if caller, err = s.issuer.PrincipalOf(claims); err != nil {
			return nil, sourceError(err)
		}
	}
	out, err := s.issuer.AssumeRole(ctx, caller, assumeInput(req))
	if err != nil {
		return nil, sourceError(err)
	}
	return s.credentials(req, out), nil
}

// assumeInput is the AssumeRole request the in-process source makes for
// req.
func assumeInput(req agent.Request) AssumeRoleInput {
	in := AssumeRoleInput{
		RoleARN: req.RoleARN, RoleSessionName: req.SessionName, Duration: req.Duration,
		SourceIdentity: req.SourceIdentity, Policy: req.SessionPolicy, PolicyARNs: req.PolicyARNs,
		TransitiveTagKeys: req.TransitiveTagKeys, AllowShort: true, SecureTransport: true,
	}
	if req.ExternalID != "" {
		in.SetExternalID(req.ExternalID)
	}
	// One Tag type (stsrules.Tag) on both sides; the request is shared by
	// every caller of a session, so the issuer gets its own copy.
	in.Tags = slices.Clone(req.Tags)
	return in
}

// ErrWebIdentityNotExplained is Explain's answer for a hop made with
// AssumeRoleWithWebIdentity: its token is only read by a real call.
var ErrWebIdentityNotExplained = errors.New("the role is assumed with a web identity token, which explain does not read; its trust policy is not evaluated here")

// Explain returns, for each hop of chain (first hop first, each without
// Via, as agent.ExplainTrust gives them), the decision Retrieve would get:
// the same AssumeRole input, caller and decision, minting nothing. The
// first hop acts as the sidecar's own user, a later one as the session the
// hop before it would get. It stops at the first refusal.
func (s *Source) Explain(chain []agent.Request) ([]*AssumeDecision, error) {
	acct := s.issuer.Account()
	caller := UserPrincipal(acct, acct.Caller)
	var out []*AssumeDecision
	for _, req := range chain {
		if req.WebIdentityTokenFile != "" {
			return out, ErrWebIdentityNotExplained
		}
		d := s.issuer.ExplainAssumeRole(caller, assumeInput(req))
		out = append(out, d)
		if d.Err != nil {
			return out, nil
		}
		next, err := s.issuer.PrincipalOf(d.Claims())
		if err != nil {
			return out, fmt.Errorf("explain %s: %w", req.RoleARN, err)
		}
		caller = next
	}
	return out, nil
}

// retrieveWebIdentity reads the token file (on every call: token files are
// rotated by their writers) and calls AssumeRoleWithWebIdentity, the
// function the Query API calls too.
func (s *Source) retrieveWebIdentity(ctx context.Context, req agent.Request) (*agent.Credentials, error) {
	token, err := readBounded(req.WebIdentityTokenFile, maxWebIdentityToken)
	if err != nil {
		// Retryable, as in aws mode: the file's writer rotates it.
		return nil, &agent.SourceError{Code: "WebIdentityTokenUnreadable", Message: "the web identity token file cannot be read", Retryable: true, Err: fmt.Errorf("read web identity token file: %w", err)}
	}
	in := WebIdentityInput{
		RoleARN: req.RoleARN, RoleSessionName: req.SessionName, Duration: req.Duration,
		WebIdentityToken: strings.TrimSpace(string(token)), Policy: req.SessionPolicy, PolicyARNs: req.PolicyARNs,
		AllowShort: true, SecureTransport: true,
	}
	out, err := s.issuer.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return nil, sourceError(err)
	}
	return s.credentials(req, out.Issued), nil
}

func (s *Source) credentials(req agent.Request, out *Issued) *agent.Credentials {
	return &agent.Credentials{
		AccessKeyID:     out.AccessKeyID,
		SecretAccessKey: out.SecretAccessKey,
		SessionToken:    out.SessionToken,
		Expiration:      out.Expiration,
		Issued:          time.Unix(out.Claims.Issued, 0).UTC(),
		RoleARN:         req.RoleARN,
		AccountID:       out.Claims.Account,
		AssumedRoleARN:  out.Claims.AssumedRole().ARN,
	}
}

// sourceError classifies an emulator error for the agent: the emulator
// never throttles or fails transiently, so its errors are final.
func sourceError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return &agent.SourceError{Code: e.Code, Message: e.Message, Retryable: e.Status >= 500 || e.Code == "Throttling", Err: err}
	}
	return &agent.SourceError{Code: "InternalFailure", Message: err.Error(), Retryable: true, Err: err}
}
