package imds

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/sts/localsts"
)

func TestZZHeapProf(t *testing.T) {
	out := os.Getenv("ZZ_HEAPPROF")
	if out == "" {
		t.Skip()
	}
	runtime.MemProfileRate = 1
	const n = 10000
	yaml := `
cache: {max_entries: 20000}
sts: {mode: local, max_qps: 1000000}
roles:
  - {name: app, duration: 1h, session_name: "s-{{.Addr}}"}
clients:
  - {name: all, match: {source_cidrs: ["10.0.0.0/8"]}, roles: [app]}
`
	cfg, _ := config.Parse([]byte(yaml))
	acct, _ := localsts.NewAccount(cfg, localsts.RandomUserKeys)
	iss, _ := localsts.NewIssuer(localsts.RandomKey(), clock.Real{}, acct)
	a, _ := agent.New(agent.Options{Source: localsts.NewSource(iss), Logger: zap.NewNop(), DisableWarm: true}, cfg)
	callers := make([]*agent.Caller, n)
	for i := range callers {
		callers[i] = &agent.Caller{Addr: netip.MustParseAddr(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))}
	}
	for _, c := range callers {
		creds, err := a.Credentials(context.Background(), c, "app")
		if err != nil {
			t.Fatal(err)
		}
		creds.Rendered(slotIMDS, renderIMDS)
	}
	runtime.GC()
	runtime.GC()
	f, _ := os.Create(out)
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	runtime.KeepAlive(callers)
	a.Close()
}
