package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/scaleconfig"
)

// scaleYAML is a config of n clients of scaleconfig's kinds (glob: their
// glob forms) followed by the clients the scale benchmarks' callers are:
// by address, by token, by uid.
func scaleYAML(n int, glob bool) string {
	var b strings.Builder
	b.WriteString("cache: {max_entries: 100000}\nsts: {mode: local, max_qps: 1000000}\nroles:\n  - {name: app, duration: 1h}\nclients:\n")
	scaleconfig.Clients(&b, n, glob, "app")
	b.WriteString("  - {name: target-addr, match: {source_cidrs: [\"127.0.0.1/32\"]}, roles: [app]}\n")
	b.WriteString("  - {name: target-token, match: {token: target-token}, roles: [app]}\n")
	b.WriteString("  - {name: target-uid, match: {uids: [4242]}, roles: [app]}\n")
	b.WriteString(scaleconfig.ProviderYAML("/nonexistent/jwks.json"))
	return b.String()
}

// scaleCaller is a caller from addr whose uid, process and container
// lookups answer at once (as a connection's memoized getters do).
func scaleCaller(addr string, uid uint32) *Caller {
	p := &Process{Unit: "other.service", Cgroup: "/system.slice/other.service", Exe: "/usr/bin/other"}
	return &Caller{
		Addr:      netip.MustParseAddr(addr),
		UID:       func() (uint32, error) { return uid, nil },
		Process:   func() (*Process, error) { return p, nil },
		Container: func() (*Container, error) { return nil, errors.New("not a container") },
	}
}

// BenchmarkScale is the cached path (trust decision, session, cache read)
// with n clients before the caller's own: exact matches must cost the same
// at every n (indexed); globs are scanned.
func BenchmarkScale(b *testing.B) {
	for _, glob := range []bool{false, true} {
		for _, n := range []int{10, 1000, 10000} {
			cfg := parseConfig(b, scaleYAML(n, glob))
			clk := clock.NewFake(t0)
			a, err := New(Options{Source: newFakeSource(clk), Clock: clk, Logger: zap.NewNop(), DisableWarm: true}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			kind := "exact"
			if glob {
				kind = "glob"
			}
			for _, tc := range []struct {
				name string
				c    *Caller
			}{
				{"addr", scaleCaller("127.0.0.1", 1000)},
				{"token", func() *Caller {
					c := scaleCaller("127.0.0.2", 1000)
					c.Token, c.HasToken = "target-token", true
					return c
				}()},
				{"uid", scaleCaller("127.0.0.2", 4242)},
			} {
				b.Run(fmt.Sprintf("%s/%s/%d", kind, tc.name, n), func(b *testing.B) {
					ctx := context.Background()
					if _, err := a.Credentials(ctx, tc.c, ""); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := a.Credentials(ctx, tc.c, ""); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			a.Close()
		}
	}
}

// BenchmarkScaleMemory reports the live heap a compiled config of 10 000
// clients holds (config and compiled state, after a GC), per client, and
// the time to parse, validate, resolve and compile it.
func BenchmarkScaleMemory(b *testing.B) {
	for _, glob := range []bool{false, true} {
		name := "exact"
		if glob {
			name = "glob"
		}
		b.Run(name, func(b *testing.B) {
			const n = 10000
			yml := scaleYAML(n, glob)
			var live uint64
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				st := compile(parseConfig(b, yml))
				runtime.GC()
				runtime.ReadMemStats(&after)
				live = after.HeapAlloc - before.HeapAlloc
				runtime.KeepAlive(st)
			}
			b.ReportMetric(float64(live)/n, "live-B/client")
		})
	}
}
