package imds

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
)

// orderWriter records the headers as they were when the status line went
// out: a header set after WriteHeader or Write never reaches the caller.
type orderWriter struct {
	h          http.Header
	status     int
	atHeader   http.Header
	writeFirst bool // Write came before any WriteHeader
	body       bytes.Buffer
}

func newOrderWriter() *orderWriter { return &orderWriter{h: http.Header{}} }

func (w *orderWriter) Header() http.Header { return w.h }

func (w *orderWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	w.atHeader = w.h.Clone()
}

func (w *orderWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.writeFirst = true
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(b)
}

// routerRequest builds a request as the listener would hand it to the
// router, from 127.0.0.1.
func routerRequest(method, path string, hdr http.Header) *http.Request {
	r := httptest.NewRequest(method, "http://127.0.0.1:8169"+path, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	for k, v := range hdr {
		r.Header[k] = v
	}
	return r
}

// TestHeadersBeforeBody: every answer has its Content-Type (text/plain for
// IMDS documents, application/json for ECS and errors) and Content-Length
// set before the status line and the body.
func TestHeadersBeforeBody(t *testing.T) {
	f := newFixture(t, mainConfigYAML("required"), fixtureOpts{source: &staticSource{}})
	h := f.srv.Handler()
	tw := httptest.NewRecorder()
	h.ServeHTTP(tw, routerRequest(http.MethodPut, tokenPath, http.Header{tokenTTLHeader: {"60"}}))
	if tw.Code != http.StatusOK {
		t.Fatalf("token: %d %s", tw.Code, tw.Body)
	}
	tok := http.Header{tokenHeader: {tw.Body.String()}}
	bill := http.Header{"Authorization": {billingToken}}

	for _, tc := range []struct {
		name, method, path string
		hdr                http.Header
		status             int
		ctype              string
	}{
		{"token", http.MethodPut, tokenPath, http.Header{tokenTTLHeader: {"60"}}, 200, "text/plain"},
		{"role_list", http.MethodGet, credsPath + "/", tok, 200, "text/plain"},
		{"imds_creds", http.MethodGet, credsPath + "/app", tok, 200, "text/plain"},
		{"imds_ext_creds", http.MethodGet, credsExtPath + "/app", tok, 200, "text/plain"},
		{"iam_info", http.MethodGet, iamInfoPath, tok, 200, "text/plain"},
		{"region", http.MethodGet, regionPath, tok, 200, "text/plain"},
		{"az", http.MethodGet, azPath, tok, 200, "text/plain"},
		{"instance_id", http.MethodGet, instanceIDPat, tok, 200, "text/plain"},
		{"identity", http.MethodGet, identityPath, tok, 200, "text/plain"},
		{"ecs_role", http.MethodGet, "/role/app", nil, 200, "application/json"},
		{"ecs_creds", http.MethodGet, "/creds", bill, 200, "application/json"},
		{"err_400", http.MethodPut, tokenPath, nil, 400, "application/json"},
		{"err_401", http.MethodGet, credsPath + "/app", nil, 401, "application/json"},
		{"err_401_ecs", http.MethodGet, "/creds", http.Header{"Authorization": {"x"}}, 401, "application/json"},
		{"err_403", http.MethodPut, tokenPath, http.Header{tokenTTLHeader: {"60"}, "X-Forwarded-For": {"1.2.3.4"}}, 403, "application/json"},
		{"err_404", http.MethodGet, "/role/nope", nil, 404, "application/json"},
		{"err_404_path", http.MethodGet, "/nope", nil, 404, "application/json"},
		{"err_405", http.MethodPost, "/creds", nil, 405, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newOrderWriter()
			h.ServeHTTP(w, routerRequest(tc.method, tc.path, tc.hdr))
			if w.status != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.status, tc.status, w.body.String())
			}
			if w.writeFirst {
				t.Errorf("body written before WriteHeader")
			}
			if got := w.atHeader.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type when the status went out = %q, want %q", got, tc.ctype)
			}
			// Success bodies leave Content-Length to net/http (set on the
			// wire for a body written in one piece; TestWireContentLength).
			if got := w.atHeader.Get("Content-Length"); got != "" && got != strconv.Itoa(w.body.Len()) {
				t.Errorf("Content-Length = %q, body has %d bytes", got, w.body.Len())
			}
			if w.body.Len() == 0 {
				t.Errorf("empty body")
			}
		})
	}
}

// reloadingAgent applies another config right after each trust decision:
// what a reload landing in the middle of a request looks like.
type reloadingAgent struct {
	*agent.Agent
	next *config.Config
}

func (a reloadingAgent) Resolve(c *agent.Caller) (agent.Identity, error) {
	id, err := a.Agent.Resolve(c)
	a.Agent.Apply(a.next)
	return id, err
}

// TestIAMInfoReloadMidRequest: iam/info answers from the snapshot its
// trust decision was made against, even when a reload removes the caller's
// role before the handler runs (it used to re-read the config and 404).
func TestIAMInfoReloadMidRequest(t *testing.T) {
	// The reload gives the caller (local-dev) another default role.
	next := parseConfig(t, strings.Replace(mainConfigYAML("optional"),
		"match: { source_cidrs: [\"127.0.0.1/32\"] }\n    roles: [app]", "match: { source_cidrs: [\"127.0.0.1/32\"] }\n    roles: [reports]", 1))
	if next.Clients[1].Roles[0] != "reports" {
		t.Fatal("fixture: the reloaded config does not change local-dev's role")
	}
	f := newFixture(t, mainConfigYAML("optional"), fixtureOpts{source: &staticSource{},
		wrap: func(a Agent) Agent { return reloadingAgent{a.(*agent.Agent), next} }})
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, routerRequest(http.MethodGet, iamInfoPath, nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), ":instance-profile/app") {
		t.Fatalf("iam/info during a reload: %d %s", w.Code, w.Body)
	}
}

// TestServerNeedsAgent: New refuses a missing dependency instead of
// panicking later.
func TestServerNeedsAgent(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without an Agent succeeded")
	}
}

// TestMetadataUsesConfigInForce: region and AZ follow the agent's config
// (hot reload), not the one the server was built with.
func TestMetadataUsesConfigInForce(t *testing.T) {
	f := newFixture(t, mainConfigYAML("optional"), fixtureOpts{source: &staticSource{}})
	cfg := parseConfig(t, mainConfigYAML("optional")+"\n")
	cfg.Region = "ap-south-2"
	f.agent.Apply(cfg)
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, routerRequest(http.MethodGet, regionPath, nil))
	if w.Code != 200 || w.Body.String() != "ap-south-2" {
		t.Errorf("region after reload = %d %q", w.Code, w.Body)
	}
}

// TestWireContentLength: on the wire every answer carries its length (SDKs
// read the body to the end; no chunked encoding for these small bodies).
func TestWireContentLength(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	tok := f.token(t, c, "60")
	for _, p := range []string{credsPath + "/app", credsPath + "/", credsExtPath + "/app", "/latest/dynamic/instance-identity/document", "/creds"} {
		req, _ := http.NewRequest(http.MethodGet, f.url+p, nil)
		req.Header.Set(tokenHeader, tok)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ContentLength != int64(len(b)) || len(res.TransferEncoding) != 0 {
			t.Errorf("%s: Content-Length %d, body %d bytes, transfer encoding %v", p, res.ContentLength, len(b), res.TransferEncoding)
		}
	}
}
