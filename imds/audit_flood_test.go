package imds

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/audit"
	"github.com/credsidecar/credsidecar/internal/clock"
)

// TestAuditFloodIsBounded reproduces issue 12's attack on the audit file:
// an untrusted local user (one uid, as the fake lookup says) asks for
// 15 KB role names from 100 loopback addresses, on the IMDS and ECS
// paths, while a trusted client is served. The file stays small, every
// vend is in it with its full key id, and the dropped refusals are
// counted under one key: the uid when the rate limiter looked it up, the
// whole of 127.0.0.0/8 when nothing did.
func TestAuditFloodIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name, yml, key string
	}{
		{"uid unknown", noClientYAML, "net:127.0.0.0/8"},
		{"uid looked up by the limiter", strings.Replace(noClientYAML, "region:", "limits: {per_client_rps: 1000, burst: 1000}\nregion:", 1), "uid:4242"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			// The audit's clock stands still: the refusal budget is its
			// burst, whatever the machine's speed.
			al, err := audit.Open(audit.Options{Path: path, Clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
			if err != nil {
				t.Fatal(err)
			}
			f := startFixture(t, tc.yml, fixtureOpts{source: &staticSource{}, audit: al,
				uid: func(_, _ netip.AddrPort) (uint32, error) { return 4242, nil }})
			long := strings.Repeat("r", 15<<10)
			const addrs, perAddr, vends = 100, 20, 50
			var wg sync.WaitGroup
			for i := range addrs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := newClient(t, fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250))
					for j := range perAddr {
						p := "/role/" + long
						if j%2 == 1 {
							p = credsPath + "/" + long
						}
						if r := f.call(t, c, http.MethodGet, p, "", nil); r.status < 400 {
							t.Errorf("untrusted caller got %d", r.status)
						}
					}
				}()
			}
			trusted := newClient(t, "127.0.0.2") // client "elsewhere"
			for range vends {
				if r := f.call(t, trusted, http.MethodGet, "/creds", "", nil); r.status != http.StatusOK {
					t.Fatalf("trusted caller: %d %s", r.status, r.body)
				}
			}
			wg.Wait()
			if err := al.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("audit file after %d refused requests with %d-byte role names and %d vends: %d bytes (was 15504801 before issue 12, without the vends)",
				addrs*perAddr, len(long), vends, st.Size())
			if st.Size() > 64<<10 {
				t.Errorf("audit file grew to %d bytes, want under 64 KiB", st.Size())
			}
			var gotVends, refusals, dropped int
			file, _ := os.Open(path)
			defer file.Close()
			sc := bufio.NewScanner(file)
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("not JSON: %q", sc.Text())
				}
				key, _ := m["key"].(string)
				role, _ := m["role"].(string)
				switch m["result"] {
				case "success":
					gotVends++
					if m["access_key_id"] != "ASIAFAKEAPPXXXXXXXXX" || m["client"] != "elsewhere" || m["caller_addr"] != "127.0.0.2" {
						t.Errorf("vend record %v", m)
					}
				case "dropped":
					dropped += int(m["count"].(float64))
					if key != tc.key {
						t.Errorf("dropped under key %q, want %q", key, tc.key)
					}
				default:
					refusals++
					if key != tc.key || len(role) > 256 || !strings.Contains(role, "…[15360 bytes, sha256 ") {
						t.Errorf("refusal key %q, role %.40q… (%d bytes)", key, role, len(role))
					}
				}
			}
			if gotVends != vends || refusals+dropped != addrs*perAddr || refusals > audit.DefaultBurst {
				t.Errorf("%d vends (want %d), %d refusals written and %d dropped (want at most %d and %d in all)",
					gotVends, vends, refusals, dropped, audit.DefaultBurst, addrs*perAddr)
			}
		})
	}
}
