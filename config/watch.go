package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
// Only events for related names count: the config file, the files it refers
// to, and every name in their symlink chains (the Kubernetes `..data` link
// and the timestamped directory it points to). Anything else written in
// those directories — a log file next to the config, another user touching
// files beside a token file — is dropped without a log line, so it can
// neither postpone a reload nor feed a debug log back into the watcher. A
// steady stream of related events cannot postpone one either: the first
// event of a burst starts a deadline (MaxDelay) that later events do not
// move.
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
	maxDelay time.Duration
	poll     time.Duration
	trigger  chan struct{}
	read     ReadFile

	w *fsnotify.Watcher
	// watched are the directories with a watch (absolute); unwatchable
	// those that could not be watched, each warned about once.
	watched     map[string]bool
	unwatchable map[string]bool
	// related are the absolute names whose events count (see relate).
	related map[string]bool
	// overflowWarned is when a lost-events warning was last logged.
	overflowWarned time.Time
	// last is the sum of the snapshot last built (applied or failed);
	// refs are the files the config bytes of that snapshot refer to.
	last [32]byte
	refs []string
}

// WatcherOptions tune a Watcher; zero values take the defaults.
type WatcherOptions struct {
	// Debounce coalesces bursts of events (default 100ms): a reload runs
	// once no related event has come for this long...
	Debounce time.Duration
	// MaxDelay ...or this long after the first related event of a burst,
	// whichever is sooner (default 500ms), so a file rewritten faster than
	// Debounce is still reloaded in time.
	MaxDelay time.Duration
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
		path: path, log: log, debounce: opts.Debounce, maxDelay: opts.MaxDelay, poll: opts.Poll,
		trigger: make(chan struct{}, 1), read: read, w: fw,
		watched: map[string]bool{}, unwatchable: map[string]bool{}, related: map[string]bool{},
	}
	if w.debounce <= 0 {
		w.debounce = 100 * time.Millisecond
	}
	if w.maxDelay <= 0 {
		w.maxDelay = 500 * time.Millisecond
	}
	w.maxDelay = max(w.maxDelay, w.debounce)
	if w.poll <= 0 {
		w.poll = 5 * time.Second
	}
	// Absolute directories make event names absolute, comparable with
	// the related names whatever the working directory.
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		fw.Close()
		return nil, nil, fmt.Errorf("watch config directory: %w", err)
	}
	if err := w.w.Add(dir); err != nil {
		fw.Close()
		return nil, nil, fmt.Errorf("watch config directory: %w", err)
	}
	w.watched[dir] = true
	s, err := takeSnapshot(path, read, nil)
	if err != nil {
		fw.Close()
		return nil, nil, err
	}
	w.relate()
	cfg, err := s.build(read, os.LookupEnv, w.armFiles)
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

// arm watches dirs (those of the files a config refers to, and of the
// names in their symlink chains) that are not watched yet.
func (w *Watcher) arm(dirs []string) {
	for _, d := range dirs {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if w.watched[d] {
			continue
		}
		if err := w.w.Add(d); err != nil {
			// A referenced file's directory may not exist yet; polling
			// still notices it. Said once, not at every poll.
			if !w.unwatchable[d] {
				w.unwatchable[d] = true
				w.log.Warn("cannot watch directory; relying on polling", zap.String("dir", d), zap.Error(err))
			}
			continue
		}
		delete(w.unwatchable, d)
		w.watched[d] = true
	}
}

// relate recomputes the related names from the config path and the
// referenced files of the last snapshot, each with its symlink chain, and
// watches the directories they live in. Run calls it before every reload,
// so that what the reload reads is watched before it is read (a ConfigMap
// update has pointed ..data at a new directory by then), and after it, for
// the files the new config refers to.
func (w *Watcher) relate() {
	w.related = map[string]bool{}
	w.armFiles(append([]string{w.path}, w.refs...))
}

// armFiles makes files and the names in their symlink chains related and
// watches their directories.
func (w *Watcher) armFiles(files []string) {
	var dirs []string
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		for _, n := range symlinkChain(abs) {
			if !w.related[n] {
				w.related[n] = true
				dirs = append(dirs, filepath.Dir(n))
			}
		}
	}
	w.arm(dirs)
}

// maxSymlinkHops bounds symlinkChain, as the kernel bounds a lookup (40).
const maxSymlinkHops = 40

// symlinkChain lists path (absolute, clean) and every name its lookup goes
// through: each symlink met on the way, in any component, and the path
// each one rewrites the lookup to, ending at the real file. For a
// Kubernetes ConfigMap key that is dir/config.yaml, dir/..data and
// dir/..2026_…/config.yaml. A missing or unreadable component ends the
// chain where it is.
func symlinkChain(path string) []string {
	names := []string{path}
	for hops := 0; hops < maxSymlinkHops; hops++ {
		link, next, ok := firstSymlink(path)
		if !ok {
			break
		}
		names = append(names, link, next)
		path = next
	}
	return names
}

// firstSymlink finds the first component of path (absolute, clean) that is
// a symlink: it returns that component's path and path with the link
// replaced by its target.
func firstSymlink(path string) (link, next string, ok bool) {
	vol := filepath.VolumeName(path)
	rest := path[len(vol):]
	prefix := vol + string(filepath.Separator)
	parts := strings.Split(strings.TrimPrefix(rest, string(filepath.Separator)), string(filepath.Separator))
	for i, part := range parts {
		if part == "" {
			continue
		}
		cur := filepath.Join(prefix, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return "", "", false
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(cur)
			if err != nil {
				return "", "", false
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(prefix, target)
			}
			return cur, filepath.Join(append([]string{target}, parts[i+1:]...)...), true
		}
		prefix = cur
	}
	return "", "", false
}

// isRelated reports whether an event for name (absolute: every watch is of
// an absolute directory) may change what the config is built from.
func (w *Watcher) isRelated(name string) bool {
	return w.related[filepath.Clean(name)]
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
	cfg, err := s.build(w.read, os.LookupEnv, w.armFiles)
	// s.sum now covers the files the new bytes refer to; the next poll
	// reads those, and their events count once Run relates them.
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
	// deadline is when the pending reload runs at the latest: MaxDelay
	// after the first related event since the last reload (zero: none
	// pending).
	var deadline time.Time
	schedule := func() {
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(w.maxDelay)
		}
		debounce.Reset(min(w.debounce, deadline.Sub(now)))
	}
	reload := func(force bool) {
		deadline = time.Time{}
		debounce.Stop()
		// Before the read, so a write after it is an event; after it,
		// changed or not, for the refs of the bytes just read.
		w.relate()
		w.reload(force, apply, fail)
		w.relate()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.w.Events:
			if !ok {
				return nil
			}
			if w.watched[filepath.Clean(ev.Name)] && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
				// A watched directory went away, and its watch with it:
				// forget it so that relate can watch it again when it
				// (or its replacement) appears.
				delete(w.watched, filepath.Clean(ev.Name))
				schedule()
				continue
			}
			if !w.isRelated(ev.Name) {
				// Not a name the config is built from. No log line: a
				// log file in this directory would feed on its own.
				continue
			}
			w.log.Debug("config file event", zap.String("event", ev.String()))
			schedule()
		case err, ok := <-w.w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost, a related one perhaps: reload. A
				// flood overflows again and again; warn once a minute.
				if time.Since(w.overflowWarned) > time.Minute {
					w.overflowWarned = time.Now()
					w.log.Warn("file watch lost events; reloading to catch up", zap.Error(err))
				}
				schedule()
				continue
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
