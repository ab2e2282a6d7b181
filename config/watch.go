package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Watcher is the one reader of a config file: it arms its watch, reads the
// first config, and then re-reads the config when it or a file it refers to
// changes, handing each new valid config on. It watches directories, not
// files, so write-in-place, rename-over (editors, mv) and the Kubernetes
// ConfigMap `..data` symlink swap are all seen; it coalesces bursts of
// events; and it polls as a fallback for file systems without inotify
// events.
//
// Each reload reads the config and the files it refers to once, into a
// snapshot, and both hashes and builds the config from those bytes. An
// unchanged hash (most polls) costs the reads and the hash, no parse; a
// write that lands anywhere during a reload changes the next hash, so the
// watcher always converges on what is on disk.
type Watcher struct {
	path     string
	log      *zap.Logger
	debounce time.Duration
	poll     time.Duration
	trigger  chan struct{}
	read     ReadFile

	w       *fsnotify.Watcher
	watched map[string]bool
	// last is the sum of the snapshot last built (applied or failed);
	// refs are the files the config bytes of that snapshot refer to.
	last [32]byte
	refs []string
}

// WatcherOptions tune a Watcher; zero values take the defaults.
type WatcherOptions struct {
	// Debounce coalesces bursts of events (default 100ms).
	Debounce time.Duration
	// Poll is the fallback re-read interval (default 5s).
	Poll time.Duration
}

// NewWatcher arms the watch on the config's directory, then reads the
// config and the files it refers to and returns the first config: nothing
// else needs to read the file, and no change can slip between the read
// and the watch. It fails as Load does when that first config is not valid.
func NewWatcher(path string, log *zap.Logger, opts WatcherOptions) (*Watcher, *Config, error) {
	return newWatcher(path, log, opts, readLimited)
}

// newWatcher is NewWatcher reading files with read.
func newWatcher(path string, log *zap.Logger, opts WatcherOptions, read ReadFile) (*Watcher, *Config, error) {
	if log == nil {
		log = zap.NewNop()
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, fmt.Errorf("watch config: %w", err)
	}
	w := &Watcher{
		path: path, log: log, debounce: opts.Debounce, poll: opts.Poll, trigger: make(chan struct{}, 1),
		read: read, w: fw, watched: map[string]bool{},
	}
	if w.debounce <= 0 {
		w.debounce = 100 * time.Millisecond
	}
	if w.poll <= 0 {
		w.poll = 5 * time.Second
	}
	if err := w.w.Add(filepath.Dir(path)); err != nil {
		fw.Close()
		return nil, nil, fmt.Errorf("watch config directory: %w", err)
	}
	w.watched[filepath.Dir(path)] = true
	s, err := takeSnapshot(path, read, nil)
	if err != nil {
		fw.Close()
		return nil, nil, err
	}
	cfg, err := s.build(read, os.LookupEnv, w.arm)
	if err != nil {
		fw.Close()
		return nil, nil, err
	}
	w.last, w.refs = s.sum, s.refs
	return w, cfg, nil
}

// Close stops the watch; Run returns. Run closes it too when ctx ends, so
// Close matters to an owner that may never call Run. It is idempotent.
func (w *Watcher) Close() error { return w.w.Close() }

// Trigger asks for a reload now (SIGHUP); it never blocks. A forced reload
// applies even unchanged bytes, as an operator asked for it.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// arm watches dirs (those of the files a config refers to) that are not
// watched yet.
func (w *Watcher) arm(dirs []string) {
	for _, d := range dirs {
		if w.watched[d] {
			continue
		}
		if err := w.w.Add(d); err != nil {
			// A referenced file's directory may not exist yet; polling
			// still notices it.
			w.log.Warn("cannot watch directory; relying on polling", zap.String("dir", d), zap.Error(err))
			continue
		}
		w.watched[d] = true
	}
}

// reload takes a snapshot and, when its sum differs from the last one (or
// force), builds a config from it and hands it to apply, or its error to
// fail. It reports whether it built anything.
func (w *Watcher) reload(force bool, apply func(*Config), fail func(error)) bool {
	s, err := takeSnapshot(w.path, w.read, w.refs)
	if err != nil {
		// Editors and kubelets remove or replace the file in several
		// steps: a missing file is the middle of one, not a new config.
		// Its reappearance is an event (or a poll).
		if errors.Is(err, os.ErrNotExist) {
			w.log.Debug("config file missing; waiting for it to reappear", zap.String("path", w.path))
			return false
		}
		if !force && w.failedRead(err) {
			return false
		}
		fail(err)
		return true
	}
	if len(s.data) == 0 && !force {
		// A truncate-then-write caught in the middle: its write is an
		// event of its own. (Load, and a forced reload, report it.)
		w.log.Debug("config file empty; waiting for its content", zap.String("path", w.path))
		return false
	}
	if s.sum == w.last && !force {
		return false
	}
	cfg, err := s.build(w.read, os.LookupEnv, w.arm)
	// s.sum now covers the files the new bytes refer to; the next poll
	// reads those.
	w.last, w.refs = s.sum, s.refs
	if err != nil {
		fail(err)
		return true
	}
	apply(cfg)
	return true
}

// failedRead records an unreadable config (not a missing one) so that the
// same failure is reported once, not at every poll.
func (w *Watcher) failedRead(err error) bool {
	sum := sha256.Sum256([]byte("\x00unreadable\x00" + err.Error()))
	if sum == w.last {
		return true
	}
	w.last = sum
	return false
}

// Run delivers configs until ctx ends: apply gets each new valid config,
// fail each error of an invalid one (the running config stays).
func (w *Watcher) Run(ctx context.Context, apply func(*Config), fail func(error)) error {
	defer w.w.Close()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	poll := time.NewTicker(w.poll)
	defer poll.Stop()
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
			w.reload(false, apply, fail)
		case <-poll.C:
			w.reload(false, apply, fail)
		case <-w.trigger:
			w.reload(true, apply, fail)
		}
	}
}
