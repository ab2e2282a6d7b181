package imds

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/agent"
)

// agentJoin is where a request waits for the agent's one source call of a
// key (agent.(*Agent).fetch, around singleflight.DoChan).
const agentJoin = "agent.(*Agent).fetch("

// barrierSource counts calls and holds each one until n requests wait for
// it, so every request of the burst is provably in flight during the call.
type barrierSource struct {
	n       int
	calls   atomic.Int64
	timeout atomic.Bool
}

func (s *barrierSource) Retrieve(_ context.Context, req agent.Request) (*agent.Credentials, error) {
	k := s.calls.Add(1)
	if !waitForGoroutines(agentJoin, s.n, 10*time.Second) {
		s.timeout.Store(true)
	}
	now := time.Now()
	return &agent.Credentials{
		AccessKeyID:     fmt.Sprintf("ASIACOUNT%011d", k),
		SecretAccessKey: "secret", SessionToken: "token",
		Expiration: now.Add(time.Hour), Issued: now, RoleARN: req.RoleARN, AccountID: testAccount,
	}, nil
}

// TestColdRoleOneSourceCall: 100 concurrent requests for a role nobody has
// asked for yet (half IMDS, half ECS, the same session) make exactly one
// source call, and all get the same credentials.
func TestColdRoleOneSourceCall(t *testing.T) {
	const n = 100
	src := &barrierSource{n: n}
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{source: src})
	c := newClient(t, "127.0.0.1")
	tok := http.Header{tokenHeader: {f.token(t, c, "60")}}

	type result struct {
		status int
		key    string
		err    string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, hdr := "/role/app", http.Header(nil)
			if i%2 == 0 {
				path, hdr = credsPath+"/app", tok
			}
			req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
			for k, v := range hdr {
				req.Header[k] = v
			}
			res, err := c.Do(req)
			if err != nil {
				results[i].err = err.Error()
				return
			}
			defer res.Body.Close()
			var body struct{ AccessKeyId string }
			results[i].status = res.StatusCode
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				results[i].err = err.Error()
			}
			results[i].key = body.AccessKeyId
		}()
	}
	wg.Wait()

	if src.timeout.Load() {
		t.Errorf("not all %d requests were waiting in %s during the source call", n, agentJoin)
	}
	if got := src.calls.Load(); got != 1 {
		t.Errorf("source calls = %d, want 1", got)
	}
	for i, r := range results {
		if r.err != "" || r.status != http.StatusOK || r.key != results[0].key || r.key == "" {
			t.Errorf("request %d: status %d key %q err %q; want 200 and key %q", i, r.status, r.key, r.err, results[0].key)
		}
	}
}
