package imds

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/sts/localsts"
)

// BenchmarkHeapPerCachedSession measures heap bytes per cached session at
// 10 000 sessions, with real local-STS credentials and their rendered
// response bodies: "one" renders the format a caller uses (IMDS), "all"
// renders all three formats.
func BenchmarkHeapPerCachedSession(b *testing.B) {
	const n = 10000
	yaml := `
cache: {max_entries: 20000}
sts: {mode: local, max_qps: 1000000}
roles:
  - {name: app, duration: 1h, session_name: "s-{{.Addr}}"}
clients:
  - {name: all, match: {source_cidrs: ["10.0.0.0/8"]}, roles: [app]}
`
	for _, all := range []bool{false, true} {
		name := "one"
		if all {
			name = "all"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				cfg, err := config.Parse([]byte(yaml))
				if err != nil {
					b.Fatal(err)
				}
				acct, err := localsts.NewAccount(cfg, localsts.RandomUserKeys)
				if err != nil {
					b.Fatal(err)
				}
				iss, err := localsts.NewIssuer(localsts.RandomKey(), clock.Real{}, acct)
				if err != nil {
					b.Fatal(err)
				}
				a, err := agent.New(agent.Options{Source: localsts.NewSource(iss), Logger: zap.NewNop(), DisableWarm: true}, cfg)
				if err != nil {
					b.Fatal(err)
				}
				callers := make([]*agent.Caller, n)
				for i := range callers {
					callers[i] = &agent.Caller{Addr: netip.MustParseAddr(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))}
				}
				// Two cycles: the previous iteration's agent must be gone
				// from the baseline.
				runtime.GC()
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				formats := []struct {
					slot   int
					render func(*agent.Credentials) []byte
				}{{slotIMDS, renderIMDS}, {slotIMDSExtended, renderIMDSExtended}, {slotECS, renderECS}}
				if !all {
					formats = formats[:1]
				}
				for _, c := range callers {
					// One request per format, each asking the agent as a
					// handler does (after the first session, the agent
					// renders each new one into the format asked first).
					for _, f := range formats {
						creds, err := a.Credentials(context.Background(), c, "app")
						if err != nil {
							b.Fatal(err)
						}
						creds.Rendered(f.slot, f.render)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if a.Len() != n {
					b.Fatalf("cached %d sessions, want %d", a.Len(), n)
				}
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-bytes/session")
				runtime.KeepAlive(callers)
				a.Close()
			}
		})
	}
}
