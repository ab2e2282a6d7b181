package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func watchYAML(region string) string {
	return fmt.Sprintf(`region: %s
roles:
  - {name: app}
clients:
  - {name: c, match: {token: {file: TOKENFILE}}, roles: [app]}
`, region)
}

type watchRig struct {
	t       *testing.T
	dir     string
	path    string
	tokens  string
	mu      sync.Mutex
	applied []*Config
	failed  []error
	cancel  context.CancelFunc
	done    chan struct{}
	w       *Watcher
}

func (r *watchRig) write(path, content string) {
	r.t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *watchRig) cfgText(region string) string {
	return strings.ReplaceAll(watchYAML(region), "TOKENFILE", r.tokens)
}

func newWatchRig(t *testing.T, configDir string) *watchRig {
	dir := t.TempDir()
	if configDir == "" {
		configDir = dir
	}
	r := &watchRig{t: t, dir: configDir, path: filepath.Join(configDir, "config.yaml"), tokens: filepath.Join(dir, "token"), done: make(chan struct{})}
	r.write(r.tokens, "tok-1\n")
	return r
}

func (r *watchRig) start() {
	w, _, err := NewWatcher(r.path, zaptest.NewLogger(r.t), WatcherOptions{Debounce: 20 * time.Millisecond, Poll: time.Hour})
	if err != nil {
		r.t.Fatal(err)
	}
	r.w = w
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		w.Run(ctx,
			func(c *Config) { r.mu.Lock(); r.applied = append(r.applied, c); r.mu.Unlock() },
			func(err error) { r.mu.Lock(); r.failed = append(r.failed, err); r.mu.Unlock() })
	}()
	r.t.Cleanup(func() { cancel(); <-r.done })
}

// waitApplied waits (bounded) until a config with region arrives.
func (r *watchRig) waitApplied(region string) *Config {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, c := range r.applied {
			if c.Region == region {
				r.mu.Unlock()
				return c
			}
		}
		r.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	r.t.Fatalf("config with region %s never applied (applied %d, failed %v)", region, len(r.applied), r.failed)
	return nil
}

func (r *watchRig) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.applied), len(r.failed)
}

func TestWatchInPlaceWrite(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.start()
	r.write(r.path, r.cfgText("eu-west-1"))
	r.waitApplied("eu-west-1")
}

func TestWatchRenameOver(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.start()
	tmp := filepath.Join(r.dir, ".config.yaml.swp")
	r.write(tmp, r.cfgText("eu-west-2"))
	if err := os.Rename(tmp, r.path); err != nil {
		t.Fatal(err)
	}
	r.waitApplied("eu-west-2")
}

func TestWatchDeleteAndRecreate(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.start()
	os.Remove(r.path)
	time.Sleep(50 * time.Millisecond)
	r.write(r.path, r.cfgText("ap-south-1"))
	r.waitApplied("ap-south-1")
	if _, failed := r.counts(); failed != 0 {
		t.Fatalf("a missing file in between is not a failure: %v", r.failed)
	}
}

// TestWatchConfigMapSwap does what the kubelet does: the config is a
// symlink to ..data/config.yaml, and ..data is a symlink replaced by rename.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	r := newWatchRig(t, dir)
	v1 := filepath.Join(dir, "..2026_01_01_v1")
	os.Mkdir(v1, 0o755)
	r.write(filepath.Join(v1, "config.yaml"), r.cfgText("us-east-1"))
	os.Symlink("..2026_01_01_v1", filepath.Join(dir, "..data"))
	os.Symlink("..data/config.yaml", r.path)
	r.start()
	v2 := filepath.Join(dir, "..2026_01_01_v2")
	os.Mkdir(v2, 0o755)
	r.write(filepath.Join(v2, "config.yaml"), r.cfgText("sa-east-1"))
	os.Symlink("..2026_01_01_v2", filepath.Join(dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(v1)
	r.waitApplied("sa-east-1")
}

func TestWatchBurstCoalesced(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.start()
	for i := range 50 {
		r.write(r.path, r.cfgText(fmt.Sprintf("us-west-%d", i)))
	}
	r.waitApplied("us-west-49")
	if applied, _ := r.counts(); applied > 10 {
		t.Fatalf("50 writes in a burst gave %d reloads; they should coalesce", applied)
	}
}

func TestWatchInvalidKeepsRunning(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.start()
	r.write(r.path, "region: us-east-1\nlistn: [oops]\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, f := r.counts(); f > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("invalid config not reported")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	msg := r.failed[0].Error()
	r.mu.Unlock()
	if !strings.Contains(msg, "line 2") {
		t.Fatalf("failure should name the line: %s", msg)
	}
	if applied, _ := r.counts(); applied != 0 {
		t.Fatal("an invalid config was applied")
	}
	r.write(r.path, r.cfgText("eu-central-1"))
	r.waitApplied("eu-central-1")
}

func TestWatchReferencedFileRotation(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.start()
	r.write(r.tokens, "tok-2\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		var got string
		if n := len(r.applied); n > 0 {
			got = r.applied[n-1].Clients[0].Match.Token.Value
		}
		r.mu.Unlock()
		if got == "tok-2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rotated token file not picked up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchUnchangedBytesNoop(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.start()
	r.write(r.path, r.cfgText("us-east-1"))
	time.Sleep(200 * time.Millisecond)
	if applied, failed := r.counts(); applied != 0 || failed != 0 {
		t.Fatalf("unchanged bytes caused a reload (%d applied, %d failed)", applied, failed)
	}
	r.w.Trigger() // SIGHUP forces one
	r.waitApplied("us-east-1")
}
