package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestRecordsAndRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	l.Write(Record{Time: exp.Add(-time.Hour), Endpoint: "ecs", Client: "billing", Addr: "169.254.170.10", UID: -1,
		Role: "reports", RoleARN: "arn:aws:iam::000000000000:role/reports",
		AssumedRoleARN: "arn:aws:sts::000000000000:assumed-role/reports/billing", KeyIDLast4: "WXYZ",
		Expiration: exp, Status: 200, Result: "success"})
	l.Write(Record{Time: exp, Endpoint: "imds_credentials", Client: "", Addr: "127.0.0.1", UID: 1000,
		Role: "we\"ird\n\x01name\xff", Status: 403, Result: "AccessDenied"})
	// logrotate: move the file away, then SIGHUP -> Reopen.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write(Record{Time: exp, Endpoint: "ecs", Addr: "::1", UID: -1, Role: "app", Status: 404, Result: "NotFound"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old := readRecords(t, path+".1")
	if len(old) != 2 {
		t.Fatalf("rotated file has %d records, want 2", len(old))
	}
	r := old[0]
	for k, want := range map[string]any{"client": "billing", "caller_addr": "169.254.170.10", "role_arn": "arn:aws:iam::000000000000:role/reports",
		"assumed_role_arn": "arn:aws:sts::000000000000:assumed-role/reports/billing", "key_id_last4": "WXYZ",
		"expiration": "2026-01-01T01:00:00Z", "status": float64(200), "result": "success"} {
		if r[k] != want {
			t.Errorf("%s = %v, want %v", k, r[k], want)
		}
	}
	if _, ok := r["caller_uid"]; ok {
		t.Error("unknown uid must be left out")
	}
	if old[1]["caller_uid"] != float64(1000) || old[1]["role"] != "we\"ird\n\x01name\ufffd" {
		t.Errorf("second record %v", old[1])
	}
	if cur := readRecords(t, path); len(cur) != 1 || cur[0]["result"] != "NotFound" {
		t.Fatalf("new file after reopen: %v", cur)
	}
}

func TestFlushedWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write(Record{Time: time.Now(), Endpoint: "ecs", UID: -1, Status: 200, Result: "success"})
	deadline := time.Now().Add(5 * FlushEvery)
	for {
		if b, _ := os.ReadFile(path); len(b) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("record not flushed within a few FlushEvery")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing-dir", "a.jsonl")); err == nil {
		t.Fatal("want an error for a path in a missing directory")
	}
}
