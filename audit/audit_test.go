package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

func readRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, lim Limits) (*Log, *clock.Fake, string) {
	t.Helper()
	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{Path: path, Clock: clk, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, clk, path
}

func TestRecordsAndRotation(t *testing.T) {
	l, _, path := open(t, Limits{})
	exp := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	l.Write(Record{Time: exp.Add(-time.Hour), Endpoint: "ecs", Client: "billing",
		Caller: Caller{Addr: "169.254.170.10", UID: -1, Token: true, Unit: "billing.service"},
		Role:   "reports", RoleARN: "arn:aws:iam::000000000000:role/reports",
		AssumedRoleARN: "arn:aws:sts::000000000000:assumed-role/reports/billing", AccessKeyID: "ASIAEXAMPLEWXYZ",
		Expiration: exp, Status: 200, Result: "success"})
	l.Write(Record{Time: exp, Endpoint: "imds_credentials", Client: "", Caller: Caller{Addr: "127.0.0.1", UID: 1000},
		Role: "we\"ird\n\x01name\xff", Status: 403, Result: "AccessDenied", Reason: "no_client", Key: "uid:1000"})
	// logrotate: move the file away, then SIGHUP -> Reopen.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write(Record{Time: exp, Endpoint: "ecs", Caller: Caller{Addr: "::1", UID: -1}, Role: "app", Status: 404, Result: "NotFound", Reason: "role_not_allowed", Key: "net:::1/128"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old := readRecords(t, path+".1")
	want := []map[string]any{{
		"time": "2026-01-01T00:00:00Z", "endpoint": "ecs", "client": "billing",
		"caller_addr": "169.254.170.10", "caller_token": true, "caller_unit": "billing.service",
		"role": "reports", "role_arn": "arn:aws:iam::000000000000:role/reports",
		"assumed_role_arn": "arn:aws:sts::000000000000:assumed-role/reports/billing", "access_key_id": "ASIAEXAMPLEWXYZ",
		"expiration": "2026-01-01T01:00:00Z", "status": float64(200), "result": "success",
	}, {
		"time": "2026-01-01T01:00:00Z", "endpoint": "imds_credentials", "client": "", "caller_addr": "127.0.0.1", "caller_uid": float64(1000),
		"role": "we\"ird\n\x01name\ufffd", "status": float64(403), "result": "AccessDenied", "reason": "no_client", "key": "uid:1000",
	}}
	if !reflect.DeepEqual(want, old) {
		t.Errorf("rotated file:\n got %v\nwant %v", old, want)
	}
	if cur := readRecords(t, path); len(cur) != 1 || cur[0]["result"] != "NotFound" {
		t.Fatalf("new file after reopen: %v", cur)
	}
}

// TestFlushedWithoutClose: records reach the file one FlushEvery after
// they are written, on the log's clock.
func TestFlushedWithoutClose(t *testing.T) {
	l, clk, path := open(t, Limits{})
	l.Write(Record{Time: t0, Endpoint: "ecs", Caller: Caller{UID: -1}, Status: 200, Result: "success"})
	if b, _ := os.ReadFile(path); len(b) > 0 {
		t.Fatalf("written before the flush: %q", b)
	}
	clk.Advance(FlushEvery)
	if b, _ := os.ReadFile(path); len(b) == 0 {
		t.Fatal("record not flushed after FlushEvery")
	}
}

func TestOpenFailsClearly(t *testing.T) {
	_, err := Open(Options{Path: filepath.Join(t.TempDir(), "missing-dir", "a.jsonl")})
	if err == nil || !strings.HasPrefix(err.Error(), "open audit log: ") {
		t.Fatalf("err = %v, want open audit log: …", err)
	}
}

// TestEveryFieldIsBounded: a record whose every string is huge stays a
// few KiB, and each cut value keeps its start and names the original's
// length and hash.
func TestEveryFieldIsBounded(t *testing.T) {
	l, _, path := open(t, Limits{})
	huge := func(c string) string { return strings.Repeat(c, 1<<20) }
	l.Write(Record{Time: t0, Endpoint: huge("e"), Client: huge("c"),
		Caller: Caller{Addr: huge("a"), UID: 7, Token: true, Unit: huge("u"), Cgroup: huge("g"), Exe: huge("x"), Container: huge("k"), Subject: huge("s")},
		Role:   huge("r"), RoleARN: huge("n"), AssumedRoleARN: huge("m"), AccessKeyID: huge("i"), Expiration: t0,
		Status: 404, Result: huge("z"), Reason: huge("y"), Key: huge("q")})
	// A multi-byte character straddling the cut is not split.
	l.Write(Record{Time: t0, Caller: Caller{UID: -1}, Role: strings.Repeat("é", 200), Status: 404, Result: "NotFound", Key: "k"})
	l.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	t.Logf("a record of 16 fields of 1 MiB each: %d bytes", len(lines[0]))
	if len(lines[0]) > 12<<10 {
		t.Errorf("record of %d bytes, want under 12 KiB", len(lines[0]))
	}
	recs := readRecords(t, path)
	role := recs[0]["role"].(string)
	if !strings.HasPrefix(role, strings.Repeat("r", MaxRole)+"…[1048576 bytes, sha256 ") || len(role) > MaxRole+50 {
		t.Errorf("role cut to %q", role)
	}
	if r := recs[1]["role"].(string); !strings.HasPrefix(r, strings.Repeat("é", MaxRole/2)+"…[400 bytes") {
		t.Errorf("multi-byte role cut to %q", r)
	}
}

// refusal is a refusal record of key.
func refusal(key string) Record {
	return Record{Time: t0, Endpoint: "ecs", Caller: Caller{Addr: "127.0.0.9", UID: -1}, Role: "x", Status: 403, Result: "AccessDenied", Reason: "no_client", Key: key}
}

func results(recs []map[string]any) (vends, refusals int, dropped map[string]float64) {
	dropped = map[string]float64{}
	for _, r := range recs {
		switch r["result"] {
		case "success":
			vends++
		case "dropped":
			dropped[r["key"].(string)] += r["count"].(float64)
		default:
			refusals++
		}
	}
	return vends, refusals, dropped
}

// TestRefusalsAreRateLimitedPerKey: a key writes its burst, then one a
// second; the rest is counted in a "dropped" record SummaryEvery after
// the first drop. Another key keeps its own budget; vends always pass.
func TestRefusalsAreRateLimitedPerKey(t *testing.T) {
	l, clk, path := open(t, Limits{PerKey: 1, Burst: 3, Total: 1000, TotalBurst: 1000, SummaryEvery: 10 * time.Second})
	for range 100 {
		l.Write(refusal("uid:4242"))
		l.Write(Record{Time: t0, Endpoint: "ecs", Client: "billing", Caller: Caller{UID: -1}, Status: 200, Result: "success", AccessKeyID: "ASIAX"})
	}
	l.Write(refusal("uid:1000"))
	clk.Advance(2 * time.Second) // two more tokens for uid:4242
	for range 10 {
		l.Write(refusal("uid:4242"))
	}
	clk.Advance(9 * time.Second) // past SummaryEvery since the first drop
	recs := readRecords(t, path)
	vends, refusals, dropped := results(recs)
	if vends != 100 || refusals != 3+1+2 {
		t.Errorf("vends %d (want 100), refusals %d (want 6)", vends, refusals)
	}
	if want := map[string]float64{"uid:4242": 97 + 8}; !reflect.DeepEqual(want, dropped) {
		t.Errorf("dropped counts %v, want %v", dropped, want)
	}
	last := recs[len(recs)-1]
	if want := (map[string]any{"time": "2026-01-01T00:00:10Z", "result": "dropped", "key": "uid:4242", "count": float64(105),
		"first": "2026-01-01T00:00:00Z", "last": "2026-01-01T00:00:02Z"}); !reflect.DeepEqual(want, last) {
		t.Errorf("dropped record %v, want %v", last, want)
	}
	// Drops after the summary are counted afresh and written on Close.
	for range 5 { // the burst refilled meanwhile: 3 pass
		l.Write(refusal("uid:4242"))
	}
	l.Close()
	_, _, dropped = results(readRecords(t, path))
	if dropped["uid:4242"] != 105+2 {
		t.Errorf("after Close: %v dropped, want 107", dropped["uid:4242"])
	}
}

// TestRefusalsAreBoundedInTotal: many keys (an IPv6 attacker's /64s)
// cannot write more than the total budget, nor grow the key map past
// MaxKeys; every refusal is accounted for.
func TestRefusalsAreBoundedInTotal(t *testing.T) {
	l, clk, path := open(t, Limits{PerKey: 1, Burst: 5, Total: 10, TotalBurst: 20, MaxKeys: 50})
	const keys = 1000
	for i := range keys {
		l.Write(refusal(fmt.Sprintf("net:2001:db8:%x::/64", i)))
	}
	l.mu.Lock()
	n := len(l.keys)
	l.mu.Unlock()
	if n > 51 {
		t.Errorf("%d keys tracked, want at most MaxKeys+1", n)
	}
	clk.Advance(time.Minute) // idle keys are forgotten
	l.mu.Lock()
	n = len(l.keys)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("%d keys still tracked after a quiet minute", n)
	}
	l.Close()
	_, refusals, dropped := results(readRecords(t, path))
	total := 0.0
	for _, c := range dropped {
		total += c
	}
	if refusals != 20 || float64(refusals)+total != keys {
		t.Errorf("written %d (want the total burst, 20), dropped %v (want the rest of %d)", refusals, total, keys)
	}
	if dropped[overflowKey] == 0 {
		t.Errorf("no drops under %q: %v", overflowKey, dropped)
	}
}
