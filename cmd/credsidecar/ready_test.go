package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestReadyLine: serve logs "credsidecar ready" once its listeners serve
// and the warm-up has ended, with the start-up time it measured and the
// sessions the warm-up cached.
func TestReadyLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(serveYAML("us-east-1", false)), 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	readyLogged := make(chan struct{}, 1)
	log := zap.New(zapcore.RegisterHooks(core, func(e zapcore.Entry) error {
		if e.Message == "credsidecar ready" {
			select {
			case readyLogged <- struct{}{}:
			default:
			}
		}
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, log, serveHooks{}) }()
	select {
	case <-readyLogged:
	case err := <-done:
		t.Fatalf("serve returned before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no ready line")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	got := logs.FilterMessage("credsidecar ready").All()
	if len(got) != 1 {
		t.Fatalf("%d ready lines", len(got))
	}
	f := got[0].ContextMap()
	if ms, ok := f["startup_ms"].(float64); !ok || ms <= 0 {
		t.Errorf("startup_ms = %v", f["startup_ms"])
	}
	// The loader client's default role (app) is warmed before ready.
	if n, ok := f["sessions_cached"].(int64); !ok || n < 1 {
		t.Errorf("sessions_cached = %v", f["sessions_cached"])
	}
	serving := logs.FilterMessage("credsidecar serving").All()
	if len(serving) != 1 || serving[0].Time.After(got[0].Time) {
		t.Errorf("the serving line (%d) does not come before the ready line", len(serving))
	}
}
