package imds

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"net/netip"
	"sync"
	"time"
)

// IMDSv2 tokens are stateless: base64url(expiry || HMAC(key, expiry, client,
// address)). Nothing is stored, so there is no table to fill; the caller's
// client name and address are inside the MAC, so a token replayed by another
// caller does not verify.
type tokenSigner struct {
	key []byte
	// macs holds keyed HMAC states, reset between uses: hmac.New per
	// token cost 11 allocations and two extra SHA-256 blocks (the padded
	// key, hashed again each time), ~4 µs of each cold SDK sequence's
	// token PUT and first GET. A reset HMAC restores the pads' hashed
	// state instead (FIPS 198-1 §6 allows precomputing them).
	macs sync.Pool
}

const (
	tokenMACLen = 20
	tokenRawLen = 8 + tokenMACLen
	// tokenMaxLen bounds what is decoded from a header.
	tokenMaxLen = 64
)

// macState is a keyed HMAC with the buffers of one use (they escape
// through the hash.Hash interface, so they live with it in the pool).
type macState struct {
	h   hash.Hash
	msg [8 + 64 + 1 + 16]byte
	sum [sha256.Size]byte
}

// mac appends the token MAC of (exp, client, addr) to dst.
func (t *tokenSigner) mac(dst []byte, exp int64, client string, addr netip.Addr) []byte {
	m, _ := t.macs.Get().(*macState)
	if m == nil {
		m = &macState{h: hmac.New(sha256.New, t.key)}
	}
	m.h.Reset()
	// One Write: client names are short (a longer one takes a Write of
	// its own); the bytes hashed are the same either way.
	msg := binary.BigEndian.AppendUint64(m.msg[:0], uint64(exp))
	if len(client) <= 64 {
		msg = append(msg, client...)
	} else {
		m.h.Write(msg)
		m.h.Write([]byte(client))
		msg = m.msg[:0]
	}
	msg = append(msg, 0)
	a := addr.Unmap().As16()
	msg = append(msg, a[:]...)
	m.h.Write(msg)
	out := append(dst, m.h.Sum(m.sum[:0])[:tokenMACLen]...)
	t.macs.Put(m)
	return out
}

// issue returns a token valid until exp for client at addr.
func (t *tokenSigner) issue(exp time.Time, client string, addr netip.Addr) string {
	return string(t.appendIssue(nil, exp, client, addr))
}

// appendIssue appends issue's token to dst: the token PUT's body, built in
// one allocation (EncodeToString and a []byte conversion of its result
// took three).
func (t *tokenSigner) appendIssue(dst []byte, exp time.Time, client string, addr netip.Addr) []byte {
	var b [tokenRawLen]byte
	raw := binary.BigEndian.AppendUint64(b[:0], uint64(exp.Unix()))
	raw = t.mac(raw, exp.Unix(), client, addr)
	if dst == nil {
		dst = make([]byte, 0, base64.RawURLEncoding.EncodedLen(tokenRawLen))
	}
	return base64.RawURLEncoding.AppendEncode(dst, raw)
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
	var want [tokenMACLen]byte
	return exp, hmac.Equal(raw[8:n], t.mac(want[:0], exp, client, addr))
}
