package config

import (
	"bytes"
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

// convergeRig is a config directory whose files the test rewrites in the
// middle of a reload. Generation n of the config names region gen-n and
// token file A (n even) or B (n odd), so a write can also change which
// files the config refers to.
type convergeRig struct {
	t                         *testing.T
	path, tokA, tokB, keyFile string
}

func newConvergeRig(t *testing.T) *convergeRig {
	dir := t.TempDir()
	r := &convergeRig{t: t, path: filepath.Join(dir, "config.yaml"), tokA: filepath.Join(dir, "a.token"),
		tokB: filepath.Join(dir, "b.token"), keyFile: filepath.Join(dir, "signing.key")}
	r.write("config", 0)
	r.write("token", 0)
	r.write("key", 0)
	return r
}

// write writes one part of generation n: "config", "token" (both token
// files) or "key".
func (r *convergeRig) write(what string, n int) {
	r.t.Helper()
	var path, content string
	switch what {
	case "config":
		tok := r.tokA
		if n%2 == 1 {
			tok = r.tokB
		}
		path, content = r.path, fmt.Sprintf(`region: gen-%d
sts: {mode: local, local: {signing_key_file: %s}}
roles: [{name: app}]
clients: [{name: c, match: {token: {file: %s}}, roles: [app]}]
`, n, r.keyFile, tok)
	case "token":
		if err := os.WriteFile(r.tokA, fmt.Appendf(nil, "tok-%d-a\n", n), 0o600); err != nil {
			r.t.Fatal(err)
		}
		path, content = r.tokB, fmt.Sprintf("tok-%d-b\n", n)
	case "key":
		path, content = r.keyFile, fmt.Sprintf("%-40s", fmt.Sprintf("signing-key-%d", n))
	default:
		r.t.Fatalf("unknown part %q", what)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// assertOnDisk checks that cfg is what the files now say (they are still:
// the test writes nothing any more).
func (r *convergeRig) assertOnDisk(cfg *Config, where string) {
	r.t.Helper()
	want, err := Load(r.path)
	if err != nil {
		r.t.Fatalf("%s: load the disk state: %v", where, err)
	}
	if cfg == nil {
		r.t.Fatalf("%s: no config applied; disk says %s", where, want.Region)
	}
	gotTok, wantTok := cfg.Clients[0].Match.Token, want.Clients[0].Match.Token
	gotKey, err1 := cfg.ReadFile(r.keyFile)
	wantKey, err2 := want.ReadFile(r.keyFile)
	if err1 != nil || err2 != nil {
		r.t.Fatalf("%s: signing key from the snapshot: %v, %v", where, err1, err2)
	}
	if cfg.Region != want.Region || gotTok.File != wantTok.File || gotTok.Value != wantTok.Value || !bytes.Equal(gotKey, wantKey) {
		r.t.Fatalf("%s: the daemon stays on region %s, token %s=%q, key %q; the disk says %s, %s=%q, %q",
			where, cfg.Region, gotTok.File, gotTok.Value, strings.TrimSpace(string(gotKey)),
			want.Region, wantTok.File, wantTok.Value, strings.TrimSpace(string(wantKey)))
	}
}

// hookedRead reads like the watcher does and runs hook before or after
// the at-th read (counting from 1) once armed.
type hookedRead struct {
	mu     sync.Mutex
	n, at  int
	before bool
	hook   func()
}

// disarm stops the hook and reports whether it ran, and how many reads
// were made since arm.
func (h *hookedRead) disarm() (ran bool, reads int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ran = h.hook == nil
	h.hook = nil
	return ran, h.n
}

func (h *hookedRead) arm(at int, before bool, hook func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n, h.at, h.before, h.hook = 0, at, before, hook
}

func (h *hookedRead) read(path string) ([]byte, error) {
	h.mu.Lock()
	h.n++
	var hook func()
	if h.n == h.at && h.hook != nil {
		hook, h.hook = h.hook, nil
	}
	h.mu.Unlock()
	if hook != nil && h.before {
		hook()
	}
	b, err := readLimited(path)
	if hook != nil && !h.before {
		hook()
	}
	return b, err
}

// TestReloadConvergesOnDisk writes the config, the token files or the
// signing key at every step of a reload: before and after each read of the
// snapshot (so between reading the config and the files it names, between
// the snapshot and the parse, and while the files a new config names are
// read), and from inside apply (between parse and apply). However the write
// lands, the reload that the write's own event triggers ends on what is on
// disk, and the reload after that builds nothing: the recorded hash
// describes the bytes applied. The old watcher hashed a second read and
// stayed on the old config for good.
func TestReloadConvergesOnDisk(t *testing.T) {
	const maxReads = 6 // config, key, token; and the key and token a new config names
	for _, what := range []string{"config", "token", "key"} {
		for at := 1; at <= maxReads; at++ {
			for _, before := range []bool{true, false} {
				where := fmt.Sprintf("%s written after read %d", what, at)
				if before {
					where = fmt.Sprintf("%s written before read %d", what, at)
				}
				t.Run("start/"+where, func(t *testing.T) { convergeAtStart(t, what, at, before) })
				t.Run("reload/"+where, func(t *testing.T) { convergeOnReload(t, what, at, before, false) })
			}
		}
		t.Run("reload/"+what+" written in apply", func(t *testing.T) { convergeOnReload(t, what, 0, false, true) })
	}
}

// convergeAtStart writes while NewWatcher reads the first config.
func convergeAtStart(t *testing.T, what string, at int, before bool) {
	r := newConvergeRig(t)
	h := &hookedRead{}
	h.arm(at, before, func() { r.write(what, 1) })
	w, cfg, err := newWatcher(r.path, zaptest.NewLogger(t), WatcherOptions{}, h.read)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if ran, reads := h.disarm(); !ran {
		t.Skipf("the first load makes only %d reads", reads)
	}
	// The write's event reloads once.
	w.reload(false, func(c *Config) { cfg = c }, func(err error) { t.Fatalf("reload: %v", err) })
	r.assertOnDisk(cfg, "after the write's reload")
	if w.reload(false, func(*Config) {}, func(error) {}) {
		t.Fatal("a reload with nothing changed on disk built a config")
	}
}

// convergeOnReload changes the config, then writes while the reload of
// that change runs (or from inside its apply).
func convergeOnReload(t *testing.T, what string, at int, before, inApply bool) {
	r := newConvergeRig(t)
	h := &hookedRead{}
	w, cfg, err := newWatcher(r.path, zaptest.NewLogger(t), WatcherOptions{}, h.read)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r.assertOnDisk(cfg, "at start")
	r.write("config", 1) // a change: region gen-1, token file B
	apply := func(c *Config) { cfg = c }
	if inApply {
		apply = func(c *Config) { cfg = c; r.write(what, 2) }
	} else {
		h.arm(at, before, func() { r.write(what, 2) })
	}
	fail := func(err error) { t.Fatalf("reload: %v", err) }
	if !w.reload(false, apply, fail) {
		t.Fatal("the change was not reloaded")
	}
	if ran, reads := h.disarm(); !ran && !inApply {
		t.Skipf("this reload makes only %d reads", reads)
	}
	w.reload(false, func(c *Config) { cfg = c }, fail) // the write's own event
	r.assertOnDisk(cfg, "after the write's reload")
	if w.reload(false, func(*Config) {}, func(error) {}) {
		t.Fatal("a reload with nothing changed on disk built a config")
	}
}

// TestWatchWriteDuringReload is the reported bug through the real watch
// loop: the file said eu-west-3, the daemon stayed on eu-west-1. The
// second write lands right after the reload read the first one.
func TestWatchWriteDuringReload(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	h := &hookedRead{}
	w, _, err := newWatcher(r.path, zaptest.NewLogger(t), WatcherOptions{Debounce: 20 * time.Millisecond, Poll: time.Hour}, h.read)
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan *Config, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(c *Config) { applied <- c }, func(err error) { t.Errorf("reload: %v", err) })
	}()
	defer func() { cancel(); <-done }()
	h.arm(1, false, func() { r.write(r.path, r.cfgText("eu-west-3")) })
	r.write(r.path, r.cfgText("eu-west-1"))
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-applied:
			if c.Region == "eu-west-3" {
				return
			}
		case <-timeout:
			t.Fatal("the file says eu-west-3; the watcher never applied it")
		}
	}
}

// BenchmarkPollUnchanged is what a 5-second poll costs when nothing
// changed (reads and a hash), beside BenchmarkLoad (reads, parse,
// validation, resolution): the watcher pays the latter only on a change.
func BenchmarkPollUnchanged(b *testing.B) {
	path := benchConfig(b)
	w, _, err := NewWatcher(path, nil, WatcherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	for b.Loop() {
		if w.reload(false, func(*Config) { b.Fatal("applied") }, func(error) { b.Fatal("failed") }) {
			b.Fatal("built a config")
		}
	}
}

// BenchmarkLoad is a full read, parse, validation and resolution.
func BenchmarkLoad(b *testing.B) {
	path := benchConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}

// benchConfig writes the shipped example config (roles, clients, policies).
func benchConfig(b *testing.B) string {
	data, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		b.Skipf("the example does not load here: %v", err)
	}
	return path
}

// TestReloadEmptyReadIsAWriteInProgress: an empty config file is the middle
// of a truncate-then-write, neither applied nor reported; its content
// arrives as the next change.
func TestReloadEmptyReadIsAWriteInProgress(t *testing.T) {
	r := newConvergeRig(t)
	w, _, err := newWatcher(r.path, zaptest.NewLogger(t), WatcherOptions{}, readLimited)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.WriteFile(r.path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fail := func(err error) { t.Fatalf("reported: %v", err) }
	if w.reload(false, func(*Config) { t.Fatal("applied an empty file") }, fail) {
		t.Fatal("an empty read built a config")
	}
	r.write("config", 1)
	var cfg *Config
	if !w.reload(false, func(c *Config) { cfg = c }, fail) {
		t.Fatal("the content after the empty read was not reloaded")
	}
	r.assertOnDisk(cfg, "after the write completed")
}
