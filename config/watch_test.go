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

	"go.uber.org/zap"
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
	// changed is signalled after each apply or failure.
	changed chan struct{}
}

func (r *watchRig) write(path, content string) {
	r.t.Helper()
	// 0600: the token file is a secret file, which must not be readable
	// by others (see TestSecretFileModes).
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
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
	r := &watchRig{t: t, dir: configDir, path: filepath.Join(configDir, "config.yaml"), tokens: filepath.Join(dir, "token"), done: make(chan struct{}), changed: make(chan struct{}, 1)}
	r.write(r.tokens, "tok-1\n")
	return r
}

func (r *watchRig) start() {
	r.startWith(zaptest.NewLogger(r.t), WatcherOptions{Debounce: 20 * time.Millisecond, Poll: time.Hour})
}

// startWith starts the watcher with log and opts.
func (r *watchRig) startWith(log *zap.Logger, opts WatcherOptions) {
	w, _, err := NewWatcher(r.path, log, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.w = w
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		w.Run(ctx,
			func(c *Config) { r.mu.Lock(); r.applied = append(r.applied, c); r.mu.Unlock(); r.signal() },
			func(err error) { r.mu.Lock(); r.failed = append(r.failed, err); r.mu.Unlock(); r.signal() })
	}()
	r.t.Cleanup(func() { cancel(); <-r.done })
}

func (r *watchRig) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitFor waits (bounded) until cond holds, re-checking it after each
// apply or failure the watcher reports.
func (r *watchRig) waitFor(cond func() bool) bool {
	timeout := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-r.changed:
		case <-timeout:
			return false
		}
	}
	return true
}

// waitApplied waits (bounded) until a config with region arrives.
func (r *watchRig) waitApplied(region string) *Config {
	r.t.Helper()
	var got *Config
	r.waitFor(func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.applied {
			if c.Region == region {
				got = c
				return true
			}
		}
		return false
	})
	if got == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.t.Fatalf("config with region %s never applied (applied %d, failed %v)", region, len(r.applied), r.failed)
	}
	return got
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
	if !r.waitFor(func() bool { _, f := r.counts(); return f > 0 }) {
		t.Fatal("invalid config not reported")
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
	if !r.waitFor(func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		n := len(r.applied)
		return n > 0 && r.applied[n-1].Clients[0].Match.Token.Value == "tok-2"
	}) {
		t.Fatal("rotated token file not picked up")
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

// TestWatchJWKSFileRotation: a jwks_file is watched like other referenced
// files; the new config answers ReadFile with the new keys.
func TestWatchJWKSFileRotation(t *testing.T) {
	r := newWatchRig(t, "")
	jwks := filepath.Join(filepath.Dir(r.tokens), "jwks.json")
	r.write(jwks, `{"keys":[1]}`)
	r.write(r.path, r.cfgText("us-east-1")+`identity_providers:
  - {name: k, issuer: "https://k.test", audiences: [x], jwks_file: `+jwks+`}
`)
	r.start()
	r.write(jwks, `{"keys":[2]}`)
	if !r.waitFor(func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		n := len(r.applied)
		if n == 0 {
			return false
		}
		b, err := r.applied[n-1].ReadFile(jwks)
		return err == nil && string(b) == `{"keys":[2]}`
	}) {
		t.Fatal("rotated jwks_file not picked up")
	}
}
