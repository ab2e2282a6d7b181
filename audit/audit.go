// Package audit writes the optional credentials audit log, for
// investigators: one bounded JSON line per credential vend or refusal,
// carrying the full access key id (an identifier that CloudTrail records,
// not a secret), the session and role ARNs, and every attribute the caller
// was identified by. Secret keys, session tokens and bearer tokens never
// reach it: a Record has no field that could hold them.
//
// The file cannot be used to fill the disk: every field is cut to a fixed
// length (MaxRole and the other Max constants), and refusals are rate-limited per caller key and in
// total, with the number dropped written as a "dropped" record. Vends are
// never dropped. The file is reopened on Reopen (SIGHUP), so logrotate can
// move it away.
package audit

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/cut"
)

// Record is one answer of a credential endpoint: a vend or a refusal.
type Record struct {
	// Time is when the answer was given.
	Time time.Time
	// Endpoint is the metrics endpoint label (imds_credentials, ecs).
	Endpoint string
	// Client is the matched client ("" when none matched).
	Client string
	// Caller holds the attributes the caller was identified by.
	Caller Caller
	// Role is the role asked for (or the client's default role it
	// resolved to); for a refusal it is caller-controlled and cut to
	// MaxRole bytes.
	Role string
	// RoleARN is the vended session's role.
	RoleARN string
	// AssumedRoleARN is the session ARN: it carries the session name.
	AssumedRoleARN string
	// AccessKeyID is the full key id of the vended credentials.
	AccessKeyID string
	// Expiration is when the vended credentials expire.
	Expiration time.Time
	// Status is the HTTP status answered; Result "success" or the public
	// error code; Reason, for a refusal, says why (a fixed vocabulary,
	// e.g. no_client, role_not_allowed, rate_limited).
	Status int
	Result string
	Reason string
	// Key is the rate-limit key of a refusal (e.g. "uid:4242",
	// "net:127.0.0.0/8"): refusals of one key beyond the refusal budget
	// are dropped and counted. "" for vends, which are never dropped.
	Key string
}

// Caller is what the front end knew of the caller when it answered. Empty
// fields are left out of the record; later attestation attributes (unit,
// cgroup, exe, container, JWT subject) fill the optional ones.
type Caller struct {
	// Addr is the caller's IP address.
	Addr string
	// UID is the uid owning the caller's socket, -1 when it was not
	// looked up (the audit never triggers a lookup) or is unknown.
	UID int64
	// Token is true when the caller presented a bearer token (the token
	// itself is never recorded).
	Token bool
	// Unit, Cgroup, Exe, Container and Subject are the attestation
	// attributes of later matches; "" when not computed.
	Unit, Cgroup, Exe, Container, Subject string
}

// Field length bounds, in bytes of the original value. A longer value is
// cut on a character boundary and marked with its length and a hash of
// the original, so repeated attempts with one long value can be grouped.
const (
	// MaxRole bounds role names (caller-controlled on refusals).
	MaxRole = 128
	// MaxName bounds client names, addresses, access key ids (AWS: at
	// most 128 characters), codes, reasons and limit keys.
	MaxName = 128
	// MaxAttr bounds the attestation attributes (paths, units, subjects).
	MaxAttr = 256
	// MaxARN bounds role and session ARNs (IAM allows ARNs of up to
	// 2048 characters).
	MaxARN = 2048
)

// Limits bound the refusals written: per key, a token bucket of Burst
// records refilled at PerKey records per second; over all keys, one of
// TotalBurst refilled at Total per second. Zero fields take the defaults.
type Limits struct {
	// PerKey is in records per second; Burst in records.
	PerKey float64
	Burst  int
	// Total is in records per second; TotalBurst in records.
	Total      float64
	TotalBurst int
	// MaxKeys bounds the keys tracked; when all are busy, new keys share
	// the key "overflow".
	MaxKeys int
	// SummaryEvery is how long after a key's first dropped refusal its
	// "dropped" record is written.
	SummaryEvery time.Duration
}

// Default limits: a key writes 10 refusals at once and 1 a second after
// that; all keys together 100 at once and 20 a second.
const (
	DefaultPerKey       = 1.0
	DefaultBurst        = 10
	DefaultTotal        = 20.0
	DefaultTotalBurst   = 100
	DefaultMaxKeys      = 4096
	DefaultSummaryEvery = 10 * time.Second
)

// overflowKey is the shared key of new keys while MaxKeys are tracked.
const overflowKey = "overflow"

// Options configure Open.
type Options struct {
	// Path is the audit file (created 0640, appended to).
	Path string
	// Clock drives the refusal budget, the flushes and the dropped
	// summaries; the wall clock when nil.
	Clock  clock.Clock
	Limits Limits
}

// Log is an open audit file. It is safe for concurrent use; writes go to a
// buffer flushed every FlushEvery and on Close, so the request path pays an
// append to memory, not a write system call.
type Log struct {
	path string
	clk  clock.Clock
	lim  Limits

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	buf    []byte
	total  bucket
	keys   map[string]*keyState
	timer  clock.Timer
	closed bool
}

// keyState is one key's refusal budget and what it dropped since its last
// summary.
type keyState struct {
	bucket
	dropped   uint64
	firstDrop time.Time
	lastDrop  time.Time
}

// bucket is a token bucket on an injected clock.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills the bucket to now and takes one token if there is one.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	b.refill(now, rate, burst)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

func (b *bucket) refill(now time.Time, rate float64, burst int) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens += d.Seconds() * rate
		b.last = now
	}
	if b.tokens > float64(burst) {
		b.tokens = float64(burst)
	}
}

// FlushEvery bounds how long a record stays in memory.
const FlushEvery = time.Second

// Open opens (creating, appending to) the audit file at opts.Path.
func Open(opts Options) (*Log, error) {
	l := &Log{path: opts.Path, clk: opts.Clock, lim: opts.Limits, keys: map[string]*keyState{}}
	if l.clk == nil {
		l.clk = clock.Real{}
	}
	if l.lim.PerKey <= 0 {
		l.lim.PerKey = DefaultPerKey
	}
	if l.lim.Burst <= 0 {
		l.lim.Burst = DefaultBurst
	}
	if l.lim.Total <= 0 {
		l.lim.Total = DefaultTotal
	}
	if l.lim.TotalBurst <= 0 {
		l.lim.TotalBurst = DefaultTotalBurst
	}
	if l.lim.MaxKeys <= 0 {
		l.lim.MaxKeys = DefaultMaxKeys
	}
	if l.lim.SummaryEvery <= 0 {
		l.lim.SummaryEvery = DefaultSummaryEvery
	}
	l.total = bucket{tokens: float64(l.lim.TotalBurst), last: l.clk.Now()}
	if err := l.open(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.timer = l.clk.AfterFunc(FlushEvery, l.tick)
	l.mu.Unlock()
	return l, nil
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	l.f = f
	l.w = bufio.NewWriterSize(f, 64<<10)
	return nil
}

// tick flushes, writes the summaries that are due, forgets idle keys and
// re-arms itself.
func (l *Log) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.summarize(l.clk.Now(), false)
	l.w.Flush()
	l.timer = l.clk.AfterFunc(FlushEvery, l.tick)
}

// summarize writes a "dropped" record for each key whose first drop is
// SummaryEvery old (every key with drops when all is set), in key order,
// and forgets keys with nothing pending and a full budget: they would
// start afresh anyway.
func (l *Log) summarize(now time.Time, all bool) {
	var due []string
	for k, s := range l.keys {
		if s.dropped > 0 && (all || now.Sub(s.firstDrop) >= l.lim.SummaryEvery) {
			due = append(due, k)
			continue
		}
		if s.dropped == 0 {
			s.refill(now, l.lim.PerKey, l.lim.Burst)
			if s.tokens >= float64(l.lim.Burst) {
				delete(l.keys, k)
			}
		}
	}
	sort.Strings(due)
	for _, k := range due {
		s := l.keys[k]
		l.writeDropped(now, k, s)
		s.dropped = 0
	}
}

// Reopen flushes and reopens the file at its path (after logrotate moved
// it); pending dropped counts go to the old file first.
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.summarize(l.clk.Now(), true)
	l.w.Flush()
	old := l.f
	if err := l.open(); err != nil {
		// Keep writing to the old file rather than losing records.
		l.f = old
		l.w = bufio.NewWriterSize(old, 64<<10)
		return err
	}
	return old.Close()
}

// Close writes the pending dropped counts, flushes and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.timer.Stop()
	l.summarize(l.clk.Now(), true)
	if err := l.w.Flush(); err != nil {
		l.f.Close()
		return fmt.Errorf("flush audit log: %w", err)
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

// Write appends one record: always for a vend (Key ""), and for a
// refusal while its key and the total are within budget; otherwise the
// refusal is counted for its key's next "dropped" record.
func (l *Log) Write(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if r.Key != "" && !l.admit(r.Key) {
		return
	}
	l.writeRecord(r)
}

// admit charges a refusal of key to its budget and the total one.
func (l *Log) admit(key string) bool {
	now := l.clk.Now()
	key = cut.String(key, MaxName)
	s := l.keys[key]
	if s == nil {
		if len(l.keys) >= l.lim.MaxKeys {
			key = overflowKey
			s = l.keys[key]
		}
		if s == nil {
			s = &keyState{bucket: bucket{tokens: float64(l.lim.Burst), last: now}}
			l.keys[key] = s
		}
	}
	// The total is charged only for refusals the key's own budget lets
	// through: one noisy key cannot spend the others' share.
	if s.take(now, l.lim.PerKey, l.lim.Burst) && l.total.take(now, l.lim.Total, l.lim.TotalBurst) {
		return true
	}
	if s.dropped == 0 {
		s.firstDrop = now
	}
	s.dropped++
	s.lastDrop = now
	return false
}

func (l *Log) writeRecord(r Record) {
	b := l.buf[:0]
	b = append(b, `{"time":`...)
	b = appendString(b, r.Time.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"endpoint":`...)
	b = appendString(b, cut.String(r.Endpoint, MaxName))
	b = append(b, `,"client":`...)
	b = appendString(b, cut.String(r.Client, MaxName))
	c := r.Caller
	b = append(b, `,"caller_addr":`...)
	b = appendString(b, cut.String(c.Addr, MaxName))
	if c.UID >= 0 {
		b = append(b, `,"caller_uid":`...)
		b = strconv.AppendInt(b, c.UID, 10)
	}
	if c.Token {
		b = append(b, `,"caller_token":true`...)
	}
	b = appendOpt(b, `,"caller_unit":`, c.Unit, MaxAttr)
	b = appendOpt(b, `,"caller_cgroup":`, c.Cgroup, MaxAttr)
	b = appendOpt(b, `,"caller_exe":`, c.Exe, MaxAttr)
	b = appendOpt(b, `,"caller_container":`, c.Container, MaxAttr)
	b = appendOpt(b, `,"caller_subject":`, c.Subject, MaxAttr)
	b = appendOpt(b, `,"role":`, r.Role, MaxRole)
	b = appendOpt(b, `,"role_arn":`, r.RoleARN, MaxARN)
	b = appendOpt(b, `,"assumed_role_arn":`, r.AssumedRoleARN, MaxARN)
	if r.AccessKeyID != "" {
		b = appendOpt(b, `,"access_key_id":`, r.AccessKeyID, MaxName)
		b = append(b, `,"expiration":`...)
		b = appendString(b, r.Expiration.UTC().Format(time.RFC3339))
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"result":`...)
	b = appendString(b, cut.String(r.Result, MaxName))
	b = appendOpt(b, `,"reason":`, r.Reason, MaxName)
	b = appendOpt(b, `,"key":`, r.Key, MaxName)
	b = append(b, "}\n"...)
	l.buf = b
	l.w.Write(b)
}

// writeDropped writes key's summary: how many refusals were dropped,
// between which times.
func (l *Log) writeDropped(now time.Time, key string, s *keyState) {
	b := l.buf[:0]
	b = append(b, `{"time":`...)
	b = appendString(b, now.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"result":"dropped","key":`...)
	b = appendString(b, key)
	b = append(b, `,"count":`...)
	b = strconv.AppendUint(b, s.dropped, 10)
	b = append(b, `,"first":`...)
	b = appendString(b, s.firstDrop.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"last":`...)
	b = appendString(b, s.lastDrop.UTC().Format(time.RFC3339Nano))
	b = append(b, "}\n"...)
	l.buf = b
	l.w.Write(b)
}

// appendOpt appends name and s cut to n bytes, when s is not empty.
func appendOpt(b []byte, name, s string, n int) []byte {
	if s == "" {
		return b
	}
	b = append(b, name...)
	return appendString(b, cut.String(s, n))
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
