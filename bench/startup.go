package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// startupFigures is how long `serve` takes to be ready on the demo config:
// listeners bound and serving, and the warm-up's fetches returned.
type startupFigures struct {
	Runs int `json:"runs"`
	// WallMs is from starting the process to reading its "credsidecar
	// ready" line (runtime and package initialization, config, listeners,
	// the embedded STS, warm-up), the median of the runs; WallMaxMs the
	// slowest.
	WallMs    float64 `json:"wall_ms"`
	WallMaxMs float64 `json:"wall_max_ms"`
	// SelfMs is the sidecar's own figure (the line's startup_ms: from
	// serve's start, so without runtime and package initialization).
	SelfMs float64 `json:"self_ms"`
}

// demoConfig is config.example.yaml with its three listeners on ephemeral
// loopback ports.
func demoConfig(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "config.example.yaml"))
	if err != nil {
		return "", fmt.Errorf("demo config: %w", err)
	}
	cfg := string(b)
	for _, port := range []string{"8169", "8170", "8171"} {
		if !strings.Contains(cfg, "127.0.0.1:"+port+`"`) {
			return "", fmt.Errorf("demo config: no listener on 127.0.0.1:%s to move to an ephemeral port", port)
		}
		cfg = strings.ReplaceAll(cfg, "127.0.0.1:"+port+`"`, `127.0.0.1:0"`)
	}
	return cfg, nil
}

// startupRun starts the sidecar on the demo config runs times, one after
// the other, and records how long each took to be ready.
func startupRun(ctx context.Context, runs int, root, bin, dir string, rep *report, progress func(string, ...any)) error {
	cfg, err := demoConfig(root)
	if err != nil {
		return err
	}
	progress("start-up: %d starts of serve on the demo config", runs)
	var wall, self []float64
	for i := range runs {
		p, err := startSidecar(ctx, bin, dir, fmt.Sprintf("startup-%d", i), cfg, false)
		if err != nil {
			return err
		}
		select {
		case r := <-p.ready:
			wall = append(wall, float64(r.at.Sub(p.started).Microseconds())/1e3)
			self = append(self, r.startupMs)
		case <-time.After(30 * time.Second):
			err = errors.New("start-up: no \"credsidecar ready\" line within 30s")
		case <-ctx.Done():
			err = ctx.Err()
		}
		p.stop()
		if err != nil {
			return err
		}
	}
	slices.Sort(wall)
	slices.Sort(self)
	rep.Startup = &startupFigures{Runs: runs, WallMs: wall[len(wall)/2], WallMaxMs: wall[len(wall)-1], SelfMs: self[len(self)/2]}
	return nil
}
