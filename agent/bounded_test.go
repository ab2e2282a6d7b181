package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// TestLogLinesAndMessagesAreBounded: a 15 KB role name from a URL and a
// huge error text from a source reach neither an error message (which
// may be shown to the caller) nor a log line in full (issue 12, item 7).
func TestLogLinesAndMessagesAreBounded(t *testing.T) {
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	core, logs := observer.New(zapcore.DebugLevel)
	a, err := New(Options{Source: src, Clock: clk, Logger: zap.New(core), DisableWarm: true, Rand: func() float64 { return 0.5 }},
		parseConfig(t, fmt.Sprintf(testYAML, 100)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)

	_, err = a.Credentials(context.Background(), alice, strings.Repeat("r", 15<<10))
	if kindOf(err) != KindRoleNotAllowed || len(err.Error()) > 256 {
		t.Errorf("unknown long role: kind %d, message of %d bytes (want at most 256)", kindOf(err), len(err.Error()))
	}
	src.setFail(&SourceError{Code: "AccessDenied", Message: strings.Repeat("m", 1<<20)})
	_, err = a.Credentials(context.Background(), alice, "app")
	if kindOf(err) != KindSourceRejected || len(err.Error()) > 2048 {
		t.Errorf("source refusal: kind %d, message of %d bytes (want at most 2 KiB)", kindOf(err), len(err.Error()))
	}
	entries := logs.All()
	if len(entries) == 0 {
		t.Fatal("no log line for the failed request")
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, e := range entries {
		line, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		if line.Len() > 2048 {
			t.Errorf("log line %q is %d bytes, want at most 2 KiB", e.Message, line.Len())
		}
		line.Free()
	}
}
