package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Watcher re-reads a config when it or a file it refers to changes, and
// hands each new valid config on. It watches directories, not files, so
// write-in-place, rename-over (editors, mv) and the Kubernetes ConfigMap
// `..data` symlink swap are all seen; it coalesces bursts of events; it
// skips reloads whose bytes did not change; and it polls as a fallback for
// file systems without inotify events.
type Watcher struct {
	path     string
	log      *zap.Logger
	debounce time.Duration
	poll     time.Duration
	trigger  chan struct{}

	w       *fsnotify.Watcher
	watched map[string]bool
	last    [32]byte
	cur     *Config
}

// WatcherOptions tune a Watcher; zero values take the defaults.
type WatcherOptions struct {
	// Debounce coalesces bursts of events (default 100ms).
	Debounce time.Duration
	// Poll is the fallback re-read interval (default 5s).
	Poll time.Duration
}

// NewWatcher arms the watch on the config's directory (before the first
// read, so no change can slip between reading and watching) and records the
// current content of cfg as the baseline.
func NewWatcher(path string, current *Config, log *zap.Logger, opts WatcherOptions) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, log: log, debounce: opts.Debounce, poll: opts.Poll, trigger: make(chan struct{}, 1), w: fw, watched: map[string]bool{}}
	if w.debounce <= 0 {
		w.debounce = 100 * time.Millisecond
	}
	if w.poll <= 0 {
		w.poll = 5 * time.Second
	}
	if err := w.arm(current); err != nil {
		fw.Close()
		return nil, err
	}
	w.last = w.fingerprint(current)
	w.cur = current
	return w, nil
}

// Trigger asks for a reload now (SIGHUP); it never blocks. A forced reload
// applies even unchanged bytes, as an operator asked for it.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// arm watches the directories of the config and of the files it refers to.
func (w *Watcher) arm(cfg *Config) error {
	dirs := []string{filepath.Dir(w.path)}
	if cfg != nil {
		for _, f := range cfg.ReferencedFiles() {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	for _, d := range dirs {
		if w.watched[d] {
			continue
		}
		if err := w.w.Add(d); err != nil {
			if d == filepath.Dir(w.path) {
				return err
			}
			// A referenced file's directory may not exist yet; polling
			// still notices it.
			w.log.Warn("cannot watch directory; relying on polling", zap.String("dir", d), zap.Error(err))
			continue
		}
		w.watched[d] = true
	}
	return nil
}

// fingerprint hashes the config file and every file it refers to.
func (w *Watcher) fingerprint(cfg *Config) [32]byte {
	h := sha256.New()
	files := []string{w.path}
	if cfg != nil {
		files = append(files, cfg.ReferencedFiles()...)
	}
	sort.Strings(files[1:])
	for _, f := range files {
		b, err := readLimited(f)
		if err != nil {
			h.Write([]byte("\x00missing:" + f))
			continue
		}
		h.Write([]byte(f))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// Run delivers configs until ctx ends: apply gets each new valid config,
// fail each error of an invalid one (the running config stays).
func (w *Watcher) Run(ctx context.Context, apply func(*Config), fail func(error)) error {
	defer w.w.Close()
	cur := w.cur
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	poll := time.NewTicker(w.poll)
	defer poll.Stop()
	reload := func(force bool) {
		cfg, err := Load(w.path)
		if err != nil {
			// Editors write in several steps: an empty or partial file is
			// reported only if it is still there at the next event.
			var pe *os.PathError
			if errors.As(err, &pe) && errors.Is(err, os.ErrNotExist) {
				w.log.Debug("config file missing; waiting for it to reappear", zap.String("path", w.path))
				return
			}
			fp := w.fingerprint(cur)
			if fp == w.last && !force {
				return
			}
			w.last = fp
			fail(err)
			return
		}
		fp := w.fingerprint(cfg)
		if fp == w.last && !force {
			return
		}
		w.last = fp
		cur = cfg
		if err := w.arm(cfg); err != nil {
			w.log.Warn("cannot watch config directory", zap.Error(err))
		}
		apply(cfg)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.w.Events:
			if !ok {
				return nil
			}
			w.log.Debug("config directory event", zap.String("event", ev.String()))
			debounce.Reset(w.debounce)
		case err, ok := <-w.w.Errors:
			if !ok {
				return nil
			}
			w.log.Warn("file watch error; polling continues", zap.Error(err))
		case <-debounce.C:
			reload(false)
		case <-poll.C:
			reload(false)
		case <-w.trigger:
			reload(true)
		}
	}
}
