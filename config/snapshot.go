package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
)

// snapshot is the bytes of a config file and of every file it refers to,
// each read once. A config built from a snapshot is parsed and resolved from
// those bytes, and the snapshot's sum hashes those same bytes: whatever the
// disk does meanwhile, the sum the watcher records describes the config it
// hands on, so a write that lands mid-reload changes the next sum and is
// picked up by the next event or poll.
type snapshot struct {
	path string
	data []byte
	// refs are the referenced files read into files, sorted; the watcher
	// takes them from the last parsed config bytes.
	refs  []string
	files map[string]fileRead
	sum   [32]byte
}

// fileRead is one referenced file as it was read: its bytes or the error,
// and how other users could read or replace it ("" when they cannot; see
// insecureFile).
type fileRead struct {
	data     []byte
	err      error
	insecure string
}

// errNotInSnapshot is what a config loaded from disk answers for a file it
// does not refer to: every file it needs was read with it.
var errNotInSnapshot = errors.New("not a file the config refers to")

// takeSnapshot reads the config at path, then each of refs. It costs reads
// and a hash, no parse: that is all a poll that finds nothing changed pays.
func takeSnapshot(path string, read ReadFile, refs []string) (*snapshot, error) {
	data, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	s := &snapshot{path: path, data: data}
	s.readRefs(read, refs)
	return s, nil
}

// readRefs (re)reads the referenced files into s and rehashes it.
func (s *snapshot) readRefs(read ReadFile, refs []string) {
	s.refs = refs
	s.files = make(map[string]fileRead, len(refs))
	for _, f := range refs {
		b, err := read(f)
		r := fileRead{data: b, err: err}
		if err == nil {
			r.insecure = insecureFile(f)
		}
		s.files[f] = r
	}
	s.sum = s.hash()
}

func (s *snapshot) hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(s.path))
	h.Write([]byte{0})
	h.Write(s.data)
	h.Write([]byte{0})
	for _, f := range s.refs {
		r := s.files[f]
		if r.err != nil {
			// Only "missing or unreadable": the error text may carry
			// nothing stable.
			h.Write([]byte("\x00missing:" + f + "\x00"))
			continue
		}
		h.Write([]byte(f))
		h.Write([]byte{0})
		h.Write(r.data)
		h.Write([]byte{0})
		// A chmod that fixes (or breaks) a file's mode is a change.
		h.Write([]byte(r.insecure))
		h.Write([]byte{0})
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// readFile answers from the snapshot; it never touches the disk.
func (s *snapshot) readFile(path string) ([]byte, error) {
	r, ok := s.files[path]
	if !ok {
		return nil, &os.PathError{Op: "read", Path: path, Err: errNotInSnapshot}
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.data, nil
}

// build parses and resolves s's config bytes. When those bytes refer to
// other files than the ones s holds, arm (when not nil) is given them
// first, so that a change to them after the read is seen, and then they
// are read into s: s's sum always covers exactly what the config was built
// from.
func (s *snapshot) build(read ReadFile, env Env, arm func(files []string)) (*Config, error) {
	c, err := Parse(s.data)
	if err != nil {
		return nil, withPath(err, s.path)
	}
	c.Path = s.path
	if refs := referencedSorted(c); !slices.Equal(refs, s.refs) {
		if arm != nil {
			arm(refs)
		}
		s.readRefs(read, refs)
	}
	if err := c.Resolve(env, s.readFile); err != nil {
		return nil, withPath(err, s.path)
	}
	if err := s.checkFileModes(c); err != nil {
		return nil, withPath(err, s.path)
	}
	// The config is built and s.sum covers its bytes: the config keeps
	// the referenced files it answers ReadFile from, not its own bytes
	// (over 0.7 MB for 10 000 clients, kept for nothing).
	s.data = nil
	c.snap = s
	return c, nil
}

func withPath(err error, path string) error {
	var ce *Error
	if errors.As(err, &ce) {
		ce.Path = path
	}
	return err
}

// referencedSorted is c.ReferencedFiles sorted, without duplicates.
func referencedSorted(c *Config) []string {
	refs := c.ReferencedFiles()
	slices.Sort(refs)
	return slices.Compact(refs)
}

// ReadFile returns the bytes of a file the config refers to (a token file,
// a jwks_file, the signing_key_file) as they were when the config was read:
// a config from Load or a Watcher was read together with those files, in
// one snapshot, and answers from it without touching the disk. A config
// built from bytes (Parse) has no snapshot and reads the file now.
func (c *Config) ReadFile(path string) ([]byte, error) {
	if c.snap != nil {
		return c.snap.readFile(path)
	}
	return readLimited(path)
}
