package localsts

import (
	"context"
	"fmt"
	"github.com/credsidecar/credsidecar/sts/stsrules"
	"strings"
	"time"
)

// SessionTokenInput is one GetSessionToken request.
type SessionTokenInput struct {
	// Duration is DurationSeconds; 0 means DefaultSessionTokenDuration
	// unless SetDuration marked it as given.
	Duration    time.Duration
	durationSet bool
	// SerialNumber and TokenCode are the MFA parameters.
	SerialNumber, TokenCode string
}

// SetDuration sets DurationSeconds as given by the client.
func (in *SessionTokenInput) SetDuration(d time.Duration) { in.Duration, in.durationSet = d, true }

// GetSessionToken issues temporary credentials that act as the calling IAM
// user. Only long-term keys may call it: session credentials, whether from
// AssumeRole* or from GetSessionToken, are refused with AccessDenied.
func (i *Issuer) GetSessionToken(_ context.Context, caller *Principal, in SessionTokenInput) (*Issued, error) {
	if err := checkDuration(in.Duration, in.durationSet, stsrules.MinDuration, MaxSessionTokenDuration); err != nil {
		return nil, err
	}
	if err := checkMFA(in.SerialNumber, in.TokenCode); err != nil {
		return nil, err
	}
	if caller.Session != nil || caller.User == nil {
		return nil, stsErr(403, "AccessDenied", "Cannot call GetSessionToken with session credentials")
	}
	d := in.Duration
	if d == 0 {
		d = DefaultSessionTokenDuration
	}
	now := i.clk.Now()
	acct := i.Account()
	return i.mint(&SessionClaims{
		Kind: "user", Account: acct.ID, UserName: caller.User.Name,
		Issued: now.Unix(), Expires: now.Add(d).Unix(),
	})
}

// AssumedRoleUser is the identity of a role session: the
// AssumedRoleUser element of AssumeRole* responses.
type AssumedRoleUser struct {
	// AssumedRoleID is AROA...:session (aws:userid).
	AssumedRoleID string
	// ARN is arn:aws:sts::ACCT:assumed-role/ROLE/SESSION, without the
	// role's path.
	ARN string
}

// AssumedRole returns the session identity of role-session claims.
func (c *SessionClaims) AssumedRole() AssumedRoleUser {
	name := c.RoleARN[strings.LastIndex(c.RoleARN, "/")+1:]
	return AssumedRoleUser{
		AssumedRoleID: uniqueID("AROA", c.RoleARN) + ":" + c.SessionName,
		ARN:           fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", c.Account, name, c.SessionName),
	}
}
