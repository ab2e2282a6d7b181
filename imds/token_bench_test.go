package imds

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkToken is the IMDSv2 token's HMAC work: one issue (the token
// PUT of every cold SDK sequence) and one check (its first GET).
func BenchmarkToken(b *testing.B) {
	s := &tokenSigner{key: []byte("0123456789abcdef0123456789abcdef")}
	addr := netip.MustParseAddr("127.0.0.1")
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		tok := s.issue(now.Add(time.Hour), "local-dev", addr)
		if !s.verify(tok, now, "local-dev", addr) {
			b.Fatal("token does not verify")
		}
	}
}
