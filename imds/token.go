package imds

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"time"
)

// IMDSv2 tokens are stateless: base64url(expiry || HMAC(key, expiry, client,
// address)). Nothing is stored, so there is no table to fill; the caller's
// client name and address are inside the MAC, so a token replayed by another
// caller does not verify.
type tokenSigner struct{ key []byte }

const (
	tokenMACLen = 20
	tokenRawLen = 8 + tokenMACLen
	// tokenMaxLen bounds what is decoded from a header.
	tokenMaxLen = 64
)

func (t *tokenSigner) mac(exp int64, client string, addr netip.Addr) []byte {
	m := hmac.New(sha256.New, t.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(exp))
	m.Write(b[:])
	m.Write([]byte(client))
	m.Write([]byte{0})
	a := addr.Unmap().As16()
	m.Write(a[:])
	return m.Sum(nil)[:tokenMACLen]
}

// issue returns a token valid until exp for client at addr.
func (t *tokenSigner) issue(exp time.Time, client string, addr netip.Addr) string {
	raw := make([]byte, 0, tokenRawLen)
	raw = binary.BigEndian.AppendUint64(raw, uint64(exp.Unix()))
	raw = append(raw, t.mac(exp.Unix(), client, addr)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// verify reports whether tok is an unexpired token for client at addr.
func (t *tokenSigner) verify(tok string, now time.Time, client string, addr netip.Addr) bool {
	_, ok := t.check(tok, now, client, addr)
	return ok
}

// check is verify that also returns the token's expiry (unix seconds).
func (t *tokenSigner) check(tok string, now time.Time, client string, addr netip.Addr) (int64, bool) {
	// One length only: the decoder skips CR and LF even in strict mode, so
	// without it a token with line breaks inserted would verify as the
	// same token (found by FuzzToken).
	if len(tok) != base64.RawURLEncoding.EncodedLen(tokenRawLen) {
		return 0, false
	}
	var raw [tokenMaxLen]byte // DecodedLen(64) = 48 fits
	// Strict: a token has one spelling; without it, the unused low bits of
	// the last character are ignored and several strings verify.
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(tok))
	if err != nil || n != tokenRawLen {
		return 0, false
	}
	exp := int64(binary.BigEndian.Uint64(raw[:8]))
	if now.Unix() >= exp {
		return 0, false
	}
	return exp, hmac.Equal(raw[8:n], t.mac(exp, client, addr))
}
