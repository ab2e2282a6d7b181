package localsts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// Error is an STS error: its Code and HTTP Status are what real STS answers.
type Error struct {
	Code    string
	Status  int
	Message string
	// Reason says why, for the log line only: it is never sent to the
	// caller (AWS's messages do not say which policy refused) and never
	// holds a secret.
	Reason string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func stsErr(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Principal is an authenticated caller of the emulator.
type Principal struct {
	// Type is "User" or "AssumedRole" (aws:PrincipalType).
	Type string
	// ARN is the user ARN, or the assumed-role session ARN.
	ARN string
	// UserID is aws:userid: AIDA... or AROA...:session.
	UserID  string
	Account string
	// User is set for IAM users (long-term keys, or their GetSessionToken session).
	User *User
	// Session is set for temporary credentials.
	Session *SessionClaims
}

// SessionClaims are what a session token carries, HMAC-protected: the
// emulator needs no session table.
type SessionClaims struct {
	Version     int    `json:"v"`
	AccessKeyID string `json:"k"`
	// Kind is "role" (AssumeRole*) or "user" (GetSessionToken).
	Kind        string            `json:"t"`
	Account     string            `json:"a"`
	RoleARN     string            `json:"r,omitempty"`
	SessionName string            `json:"s,omitempty"`
	UserName    string            `json:"u,omitempty"`
	Issued      int64             `json:"i"`
	Expires     int64             `json:"x"`
	Tags        map[string]string `json:"g,omitempty"`
	// Transitive lists the tag keys that carry over to chained sessions.
	Transitive     []string `json:"tt,omitempty"`
	SessionPolicy  string   `json:"p,omitempty"`
	PolicyARNs     []string `json:"pa,omitempty"`
	SourceIdentity string   `json:"si,omitempty"`
	Chained        bool     `json:"c,omitempty"`
	MFA            bool     `json:"m,omitempty"`
	WebIdentity    bool     `json:"w,omitempty"`
	// Nonce is what tokens minted before the access key id alone carried
	// their randomness held (the same random bytes as the key id); new
	// tokens leave it out, 27 bytes shorter.
	Nonce string `json:"n,omitempty"`
}

// Issued is a freshly minted credential set.
type Issued struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	Claims          *SessionClaims
}

// Issuer mints and verifies temporary credentials for the emulated account.
type Issuer struct {
	// keys holds the signing key and, after rotations, the retired ones:
	// credentials issued before the rotation keep verifying until they
	// expire, new ones are signed with the new key.
	keys    atomic.Pointer[keySet]
	clk     clock.Clock
	account atomic.Pointer[Account]
}

type keySet struct {
	current []byte
	retired []retiredKey // newest first
}

// retiredKey verifies only what it signed before it was rotated out, and
// only for the longest session the emulator issues, so a leaked
// (rotated-out) key cannot mint anything new.
type retiredKey struct {
	key       []byte
	rotatedAt time.Time
}

// maxSessionLife bounds every session the emulator issues (GetSessionToken's
// 36 hours): after that long, a rotated-out key verifies nothing.
const maxSessionLife = 36 * time.Hour

// NewIssuer returns an issuer signing with key (at least 32 bytes).
func NewIssuer(key []byte, clk clock.Clock, acct *Account) (*Issuer, error) {
	if len(key) < 32 {
		return nil, errors.New("localsts: signing key must be at least 32 bytes")
	}
	if clk == nil {
		clk = clock.Real{}
	}
	i := &Issuer{clk: clk}
	i.keys.Store(&keySet{current: key})
	i.account.Store(acct)
	return i, nil
}

// RotateKey makes key the signing key (signing_key_file changed). The old
// key still verifies what it signed; a rotation to the same key is a no-op.
func (i *Issuer) RotateKey(key []byte) error {
	if len(key) < 32 {
		return errors.New("localsts: signing key must be at least 32 bytes")
	}
	cur := i.keys.Load()
	if hmac.Equal(cur.current, key) {
		return nil
	}
	now := i.clk.Now()
	next := &keySet{current: key, retired: []retiredKey{{key: cur.current, rotatedAt: now}}}
	for _, r := range cur.retired {
		// Keys retired longer than any session lives verify nothing: drop them.
		if now.Before(r.rotatedAt.Add(maxSessionLife)) {
			next.retired = append(next.retired, r)
		}
	}
	i.keys.Store(next)
	return nil
}

// SetAccount swaps in a new emulated account (config reload).
func (i *Issuer) SetAccount(a *Account) { i.account.Store(a) }

// Account returns the emulated account in force.
func (i *Issuer) Account() *Account { return i.account.Load() }

// RandomKey returns 32 random bytes for a signing key.
func RandomKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return b
}

// RandomUserKeys returns a random long-term key pair.
func RandomUserKeys() (string, string) {
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return "AKIA" + base32.StdEncoding.EncodeToString(b[:10]), base64.StdEncoding.EncodeToString(b[10:])
}

func (i *Issuer) sign(purpose string, data []byte) []byte {
	return signWith(i.keys.Load().current, purpose, data)
}

func signWith(key []byte, purpose string, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// mint issues credentials carrying claims. The secret is derived from the
// key and the claims, so verification recomputes it.
func (i *Issuer) mint(c *SessionClaims) (*Issued, error) {
	var raw [10]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("mint credentials: %w", err)
	}
	c.Version = 1
	// The key id's random bytes make every token's claims unique; a
	// nonce repeating them made each token longer for nothing.
	c.AccessKeyID = "ASIA" + base32.StdEncoding.EncodeToString(raw[:])
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("mint credentials: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(i.sign("token", body))
	return &Issued{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: i.secretFor(body),
		SessionToken:    tok,
		Expiration:      time.Unix(c.Expires, 0).UTC(),
		Claims:          c,
	}, nil
}

func (i *Issuer) secretFor(body []byte) string {
	return secretWith(i.keys.Load().current, body)
}

func secretWith(key, body []byte) string {
	return base64.StdEncoding.EncodeToString(signWith(key, "secret", body))[:40]
}

// maxTokenLen bounds what Verify decodes.
const maxTokenLen = 16 << 10

// Verify checks a session token presented with akid and returns its claims
// and the secret key the request must have been signed with. An expired
// token is ExpiredToken; anything forged or malformed is InvalidClientTokenId.
func (i *Issuer) Verify(akid, token string) (*SessionClaims, string, error) {
	invalid := stsErr(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
	if len(token) > maxTokenLen {
		return nil, "", invalid
	}
	b64, macPart, ok := strings.Cut(token, ".")
	if !ok {
		return nil, "", invalid
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64)
	mac, err2 := base64.RawURLEncoding.DecodeString(macPart)
	if err1 != nil || err2 != nil {
		return nil, "", invalid
	}
	ks := i.keys.Load()
	key := ks.current
	var retired *retiredKey
	if !hmac.Equal(mac, signWith(key, "token", body)) {
		for j := range ks.retired {
			if hmac.Equal(mac, signWith(ks.retired[j].key, "token", body)) {
				retired = &ks.retired[j]
				break
			}
		}
		if retired == nil {
			return nil, "", invalid
		}
		key = retired.key
	}
	var c SessionClaims
	if err := json.Unmarshal(body, &c); err != nil || c.Version != 1 {
		return nil, "", invalid
	}
	if retired != nil && (c.Issued > retired.rotatedAt.Unix() || c.Expires-c.Issued > int64(maxSessionLife/time.Second) ||
		!i.clk.Now().Before(retired.rotatedAt.Add(maxSessionLife))) {
		// Signed by a rotated-out key after its rotation, or for longer
		// than any session lives: forged with a leaked key.
		return nil, "", invalid
	}
	if c.AccessKeyID != akid {
		return nil, "", invalid
	}
	if !i.clk.Now().Before(time.Unix(c.Expires, 0)) {
		return nil, "", stsErr(403, "ExpiredToken", "The security token included in the request is expired")
	}
	return &c, secretWith(key, body), nil
}

// PrincipalOf turns verified claims into the principal they stand for.
func (i *Issuer) PrincipalOf(c *SessionClaims) (*Principal, error) {
	acct := i.Account()
	switch c.Kind {
	case "role":
		u := c.AssumedRole()
		return &Principal{
			Type:    "AssumedRole",
			ARN:     u.ARN,
			UserID:  u.AssumedRoleID,
			Account: c.Account,
			Session: c,
		}, nil
	case "user":
		u, ok := acct.byName[c.UserName]
		if !ok {
			return nil, stsErr(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
		}
		return &Principal{Type: "User", ARN: u.ARN, UserID: u.ID, Account: acct.ID, User: u, Session: c}, nil
	}
	return nil, stsErr(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
}

// UserPrincipal is the principal of an IAM user's long-term keys.
func UserPrincipal(acct *Account, u *User) *Principal {
	return &Principal{Type: "User", ARN: u.ARN, UserID: u.ID, Account: acct.ID, User: u}
}
