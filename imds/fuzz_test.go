package imds

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// allowedStatus is every status PRODUCT.md lets the credential listeners answer.
var allowedStatus = map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 429: true, 502: true, 503: true}

var fuzzRemotes = []string{"127.0.0.1:40000", "127.0.0.2:40000", "[::1]:40000", "[::ffff:127.0.0.1]:1", "169.254.170.10:5", "not-an-address", ""}

// Header presence bits of FuzzHandlers.
const (
	fzToken      = 1 << iota // send X-aws-ec2-metadata-token
	fzTTL                    // send X-aws-ec2-metadata-token-ttl-seconds
	fzAuth                   // send Authorization
	fzXFF                    // send X-Forwarded-For
	fzValidToken             // replace the token with one issued to this caller
	fzOptional               // use the tokens: optional config
)

// FuzzHandlers sends arbitrary methods, paths and headers through the
// router: no panic, a status of the contract, and a JSON body on errors.
func FuzzHandlers(f *testing.F) {
	required := newFixture(f, mainConfigYAML("required"), fixtureOpts{source: &staticSource{}})
	optional := newFixture(f, mainConfigYAML("optional"), fixtureOpts{source: &staticSource{}})

	for _, s := range []struct {
		method, path, token, ttl, auth, host string
		bits                                 uint8
		remote                               uint8
	}{
		{"PUT", tokenPath, "", "21600", "", "127.0.0.1:8169", fzTTL, 0},
		{"PUT", tokenPath + "/", "", "0", "", "localhost", fzTTL, 0},
		{"PUT", tokenPath, "", "60", "", "localhost", fzTTL | fzXFF, 0},
		{"GET", credsPath + "/", "", "", "", "169.254.169.254", fzToken | fzValidToken, 0},
		{"GET", credsPath + "/app", "", "", "", "169.254.169.254", fzToken | fzValidToken, 0},
		{"GET", credsExtPath + "/app/", "", "", "", "localhost:1", fzToken | fzValidToken, 2},
		{"GET", credsPath + "/reports", "garbage", "", "", "127.0.0.1", fzToken, 0},
		{"GET", iamInfoPath, "", "", "", "127.0.0.1", fzOptional, 0},
		{"GET", identityPath, "", "", "", "[::1]:80", fzOptional, 2},
		{"GET", "/role/app", "", "", billingToken, "169.254.170.2", fzAuth, 1},
		{"GET", "/creds", "", "", "nope", "169.254.170.2", fzAuth, 0},
		{"GET", "/creds/", "", "", "", "evil.example", 0, 0},
		{"POST", "/role/x/", "", "", "", "", 0, 5},
		{"GET", "//latest/../meta-data/./", "", "", "", "127.0.0.1", 0, 0},
		{"", "", "", "", "", "", 0, 6},
		{"get", "/latest/api/token", "", "", "", "127.0.0.1", 0, 0},
	} {
		f.Add(s.method, s.path, s.token, s.ttl, s.auth, s.host, s.bits, s.remote)
	}

	f.Fuzz(func(t *testing.T, method, path, token, ttl, auth, host string, bits, remote uint8) {
		fx := required
		if bits&fzOptional != 0 {
			fx = optional
		}
		h := fx.srv.Handler()
		from := fuzzRemotes[int(remote)%len(fuzzRemotes)]
		if bits&fzValidToken != 0 {
			w := httptest.NewRecorder()
			r := fuzzRequest(http.MethodPut, tokenPath, "127.0.0.1", from)
			r.Header.Set(tokenTTLHeader, "60")
			h.ServeHTTP(w, r)
			if w.Code == http.StatusOK {
				token = w.Body.String()
			}
		}
		r := fuzzRequest(method, path, host, from)
		if bits&fzToken != 0 {
			r.Header.Set(tokenHeader, token)
		}
		if bits&fzTTL != 0 {
			r.Header.Set(tokenTTLHeader, ttl)
		}
		if bits&fzAuth != 0 {
			r.Header.Set("Authorization", auth)
		}
		if bits&fzXFF != 0 {
			r.Header.Set("X-Forwarded-For", "203.0.113.1")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		if !allowedStatus[res.StatusCode] {
			t.Fatalf("%q %q: status %d is not in the contract (body %q)", method, path, res.StatusCode, w.Body)
		}
		ct := res.Header.Get("Content-Type")
		if res.StatusCode != http.StatusOK {
			var e errorBody
			if ct != "application/json" || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code == "" {
				t.Fatalf("%q %q: error %d is not JSON {code,message}: %q %q", method, path, res.StatusCode, ct, w.Body)
			}
			// Errors never name a role that exists.
			for _, role := range []string{"reports", "admin"} {
				if strings.Contains(e.Message, role) && !strings.Contains(path, role) {
					t.Fatalf("error message names role %q: %q", role, e.Message)
				}
			}
		} else if ct != "text/plain" && ct != "application/json" {
			t.Fatalf("%q %q: 200 with Content-Type %q", method, path, ct)
		}
	})
}

// fuzzRequest builds a server-side request without NewRequest's
// validation, so any method, path and Host reach the router.
func fuzzRequest(method, path, host, remote string) *http.Request {
	r := &http.Request{
		Method: method, URL: &url.URL{Path: path}, RequestURI: path,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: host, RemoteAddr: remote,
	}
	return r.WithContext(context.Background())
}

// FuzzToken: the verifier never panics, accepts what it issued to the
// same caller until expiry, and nothing else.
func FuzzToken(f *testing.F) {
	signer := &tokenSigner{key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	valid := signer.issue(now.Add(time.Minute), "local-dev", netip.MustParseAddr("127.0.0.1"))
	for _, seed := range []string{"", valid, valid + "A", valid[:len(valid)-1], strings.Repeat("A", tokenMaxLen), strings.Repeat("A", tokenMaxLen+1),
		strings.Repeat("/", 38), "====", "\x00\xff", strings.Repeat("é", 20)} {
		f.Add(seed, "local-dev", []byte{127, 0, 0, 1}, int64(60))
	}
	f.Fuzz(func(t *testing.T, tok, client string, addrBytes []byte, ttl int64) {
		addr, _ := netip.AddrFromSlice(addrBytes)
		// Arbitrary input: must not panic.
		if tok != valid && signer.verify(tok, now, client, addr) {
			// A forgery would need the key: only a token issued by it verifies.
			t.Fatalf("verify accepted an arbitrary token %q", tok)
		}
		// Round trip for this client and address.
		ttl = 1 + abs(ttl)%maxTokenTTL
		exp := now.Add(time.Duration(ttl) * time.Second)
		issued := signer.issue(exp, client, addr)
		if len(issued) > tokenMaxLen {
			t.Fatalf("issued token of %d bytes exceeds tokenMaxLen", len(issued))
		}
		if !signer.verify(issued, now, client, addr) {
			t.Fatalf("own token refused (client %q addr %v ttl %d)", client, addr, ttl)
		}
		if signer.verify(issued, exp, client, addr) {
			t.Fatalf("token accepted at its expiry")
		}
		if signer.verify(issued, now, client+"x", addr) {
			t.Fatalf("token accepted for another client")
		}
		other := netip.MustParseAddr("127.0.0.2")
		if addr.Unmap() != other && signer.verify(issued, now, client, other) {
			t.Fatalf("token accepted from another address")
		}
	})
}

func abs(v int64) int64 {
	if v < 0 {
		if v == -v { // math.MinInt64
			return 0
		}
		return -v
	}
	return v
}
