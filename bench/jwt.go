package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtIssuer is the bench's identity provider (a Kubernetes-like issuer
// whose keys are a jwks_file).
const jwtIssuer = "https://kubernetes.default.svc.cluster.local"

// jwtNewTokens is how many first requests of new tokens are timed (within
// the sidecar's per-source budget of new-token verifications).
const jwtNewTokens = 20

// jwtSigner signs Kubernetes-shaped projected service-account tokens.
type jwtSigner struct{ s jose.Signer }

func (j *jwtSigner) token(pod string) (string, error) {
	now := time.Now()
	return jwt.Signed(j.s).Claims(map[string]any{
		"iss": jwtIssuer, "sub": "system:serviceaccount:bench:app", "aud": []string{"credsidecar"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "bench", "serviceaccount": map[string]any{"name": "app"}, "pod": map[string]any{"name": pod}},
	}).Serialize()
}

// jwtConfig is sidecarConfig's throughput shape with one client matched by
// a JWT (RS256, as Kubernetes signs) instead of the source address, and a
// control client holding static token (as long as the JWT, so that both
// requests cost the same to read).
func jwtConfig(jwksFile, static string) string {
	return strings.Replace(sidecarConfig(0), "  - name: bench\n    match: { source_cidrs: [\"127.0.0.0/8\"] }\n",
		"  - name: bench\n    match: { jwt: { provider: cluster, subject: \"system:serviceaccount:bench:*\" } }\n"+
			"    roles: [app]\n  - name: static\n    match: { token: \""+static+"\" }\n", 1) +
		"identity_providers:\n  - { name: cluster, issuer: \"" + jwtIssuer + "\", audiences: [credsidecar], jwks_file: " + jwksFile + " }\n"
}

// jwtRun measures the ECS path with a JWT client: keep-alive load with one
// cached token against the bare server, and the first request of each of
// jwtNewTokens new tokens (its verification) on one connection.
func jwtRun(ctx context.Context, o *options, bin, dir string, rep *report, progress func(string, ...any)) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "bench"))
	if err != nil {
		return err
	}
	js := &jwtSigner{s: signer}
	doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "bench", Use: "sig"}}})
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, doc, 0o600); err != nil {
		return err
	}
	tok, err := js.token("bench-0")
	if err != nil {
		return err
	}
	static := strings.Repeat("s", len(tok))
	side, err := startSidecar(ctx, bin, dir, "sidecar-jwt", jwtConfig(jwksFile, static), false)
	if err != nil {
		return err
	}
	defer side.stop()
	req, _ := http.NewRequest(http.MethodGet, "http://"+side.addr+"/role/app", nil)
	req.Header.Set("Authorization", tok)
	body, err := fetch(req)
	if err != nil {
		return fmt.Errorf("jwt client: %w", err)
	}
	bare, err := startBare(ctx, dir, body, "")
	if err != nil {
		return err
	}
	defer bare.stop()
	progress("jwt: sidecar on %s with a JWT client, bare server on %s, token %d bytes", side.addr, bare.addr, len(tok))
	req.Header.Set("Authorization", static)
	if _, err := fetch(req); err != nil {
		return fmt.Errorf("static token client: %w", err)
	}
	ecsReq := func(addr, tok string) []byte {
		return []byte("GET /role/app HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: " + tok + "\r\n\r\n")
	}
	// "static" is the control: the same sidecar, a request of the same
	// size, a static token client.
	accs := map[string][]*result{}
	reqs := map[string][]byte{"bare": ecsReq(bare.addr, tok), "sidecar": ecsReq(side.addr, tok), "static": ecsReq(side.addr, static)}
	addrs := map[string]string{"bare": bare.addr, "sidecar": side.addr, "static": side.addr}
	for _, n := range []string{"bare", "sidecar", "static"} {
		keepAlive(ctx, addrs[n], reqs[n], o.conns, o.warmup)
	}
	per := o.duration / time.Duration(o.rounds)
	for round := range o.rounds {
		order := []string{"bare", "sidecar", "static"}
		if round%2 == 1 {
			order = []string{"static", "sidecar", "bare"}
		}
		for _, n := range order {
			progress("jwt round %d/%d: %s, %d keep-alive connections, %s", round+1, o.rounds, n, o.conns, per)
			accs[n] = append(accs[n], keepAlive(ctx, addrs[n], reqs[n], o.conns, per))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	c := compareRounds(accs["bare"], accs["sidecar"])
	rep.JWTKeepAlive = &c
	st := compareRounds(accs["bare"], accs["static"])
	rep.JWTStaticToken = &st

	// New tokens: each first request verifies (RS256) before the cached
	// session is found.
	conn, err := dial(side.addr)
	if err != nil {
		return err
	}
	defer conn.close()
	var first result
	for i := range jwtNewTokens {
		t, err := js.token(fmt.Sprintf("bench-new-%d", i))
		if err != nil {
			return err
		}
		r := []byte("GET /role/app HTTP/1.1\r\nHost: " + side.addr + "\r\nAuthorization: " + t + "\r\n\r\n")
		start := time.Now()
		status, _, _, err := conn.do(r, false)
		d := time.Since(start)
		first.Requests++
		first.Elapsed += d
		if err != nil || status != 200 {
			first.Errors++
			continue
		}
		first.hist.record(d)
	}
	f := figuresOf(&first)
	rep.JWTNewToken = &f
	return nil
}

// printJWT prints jwtRun's figures.
func printJWT(w io.Writer, r *report) {
	if r.JWTKeepAlive == nil {
		return
	}
	c := *r.JWTKeepAlive
	fmt.Fprintf(w, "keep-alive with a JWT client: GET /role/app with a projected-token-shaped RS256 JWT as Authorization, %d connections\n", r.Conns)
	fmt.Fprintf(w, "  %-9s %12s %10s %10s %8s\n", "", "req/s", "p50", "p99", "errors")
	fmt.Fprintf(w, "  %-9s %12.0f %10s %10s %8d\n", "bare", c.Bare.RPS, fmtDur(c.Bare.P50us), fmtDur(c.Bare.P99us), c.Bare.Errors)
	fmt.Fprintf(w, "  %-9s %12.0f %10s %10s %8d\n", "sidecar", c.Sidecar.RPS, fmtDur(c.Sidecar.P50us), fmtDur(c.Sidecar.P99us), c.Sidecar.Errors)
	fmt.Fprintf(w, "  %-9s %12.3f %10s %10s   (goal >= 0.90)\n", "ratio", c.Ratio, fmt.Sprintf("%.2fx", c.P50Ratio), fmt.Sprintf("%.2fx", c.P99Ratio))
	printSpread(w, "throughput", c.RoundRatios)
	if st := r.JWTStaticToken; st != nil {
		fmt.Fprintf(w, "  %-9s %12.0f %10s %10s %8d   (control: a static token of the same length, same sidecar)\n", "static", st.Sidecar.RPS, fmtDur(st.Sidecar.P50us), fmtDur(st.Sidecar.P99us), st.Sidecar.Errors)
		fmt.Fprintf(w, "  %-9s %12.3f %10s %10s   (JWT/static %.3f)\n", "ratio", st.Ratio, fmt.Sprintf("%.2fx", st.P50Ratio), fmt.Sprintf("%.2fx", st.P99Ratio), c.Ratio/st.Ratio)
	}
	fmt.Fprintln(w)
	if n := r.JWTNewToken; n != nil {
		fmt.Fprintf(w, "first request of a new token (verification, one connection, %d tokens): p50 %s, p99 %s, %d errors\n\n",
			n.Requests, fmtDur(n.P50us), fmtDur(n.P99us), n.Errors)
	}
}
