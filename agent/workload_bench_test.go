package agent

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// BenchmarkCachedHitWorkload is BenchmarkCachedHit for a client matched by
// uid and one matched by systemd_unit, with the getters memoized per
// connection as imds's are: what a keep-alive request pays for the match
// once the connection's attributes are known.
func BenchmarkCachedHitWorkload(b *testing.B) {
	const yml = `
sts: { mode: local }
roles:
  - {name: app}
clients:
  - {name: by-uid, match: {uids: [4242]}, roles: [app]}
  - {name: by-unit, match: {systemd_unit: "billing*.service"}, roles: [app]}
`
	for _, tc := range []struct {
		name string
		uid  uint32
		p    *Process
	}{
		{"uid", 4242, nil},
		{"systemd_unit", 1000, &Process{PID: 7, Unit: "billing-a.service", Cgroup: "/system.slice/billing-a.service"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			clk := clock.NewFake(t0)
			a, err := New(Options{Source: newFakeSource(clk), Clock: clk, Logger: zap.NewNop(), DisableWarm: true}, parseConfig(b, yml))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(a.Close)
			var once sync.Once
			c := &Caller{
				UID: func() (uint32, error) { return tc.uid, nil },
				Process: func() (*Process, error) {
					once.Do(func() {})
					return tc.p, nilIf(tc.p)
				},
			}
			ctx := context.Background()
			if _, err := a.Credentials(ctx, c, "app"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.Credentials(ctx, c, "app"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
