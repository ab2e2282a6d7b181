//go:build unix

package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// needRoot skips a test that must chown files to other users, except in
// CI, which runs as root and where a skip would hide a regression.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test chowns files to other users and needs root; CI runs as root")
	}
	t.Skip("needs root to chown files to other users")
}

// otherUID and otherGID are a user and group that are not the test's.
const otherUID, otherGID = 4242, 4243

func mustChmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mustLchown(t *testing.T, path string, uid, gid int) {
	t.Helper()
	if err := os.Lchown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// TestInsecureFile is the StrictModes table: what each layout of a secret
// file makes of it, and the fix the message gives.
func TestInsecureFile(t *testing.T) {
	euid, egid := os.Geteuid(), os.Getegid()
	cases := []struct {
		name string
		root bool // chowns to other users
		// setup makes the layout in dir and returns the configured path.
		setup func(t *testing.T, dir string) string
		// want are substrings of the problem ("" = accepted); %s is the
		// real file, %d the directory the case made.
		want []string
	}{
		{name: "0600 own file", setup: secret(0o600), want: nil},
		{name: "0400 own file", setup: secret(0o400), want: nil},
		{name: "0644 readable by everyone", setup: secret(0o644), want: []string{"other users (mode 0644)", "chmod 600 %s"}},
		{name: "0604 readable by others", setup: secret(0o604), want: []string{"readable by other users (mode 0604)", "chmod 600 %s"}},
		{name: "0620 writable by group", setup: secret(0o620), want: []string{"writable by its group (mode 0620)"}},
		{name: "0602 writable by others", setup: secret(0o602), want: []string{"writable by other users"}},
		{name: "0640 own file, own group", setup: secret(0o640), want: wantIf(euid != 0, "readable by its group (mode 0640)", "chmod 600 %s")},
		{name: "0440 root file, own group (kubelet fsGroup)", root: true, setup: owned(0o440, 0, egid), want: nil},
		{name: "0640 root file, another group", root: true, setup: owned(0o640, 0, otherGID), want: []string{"readable by its group (mode 0640)"}},
		{name: "0660 root file, own group", root: true, setup: owned(0o660, 0, egid), want: []string{"writable by its group (mode 0660)"}},
		{name: "owned by another user", root: true, setup: owned(0o600, otherUID, egid), want: []string{fmt.Sprintf("is owned by uid %d", otherUID), fmt.Sprintf("chown %d %%s && chmod 600 %%s", euid)}},
		{name: "directory writable by others", setup: inDir(0o777), want: []string{"directory %d", "writable by its group and other users (mode 0777)", "chmod go-w %d"}},
		{name: "0666 writable by everyone", setup: secret(0o666), want: []string{"writable by", "other users (mode 0666)"}},
		{name: "directory writable by group", setup: inDir(0o770), want: []string{"writable by its group (mode 0770)", "chmod go-w %d"}},
		{name: "sticky directory writable by all (/tmp)", setup: inDir(0o777 | os.ModeSticky), want: nil},
		{name: "directory owned by another user", root: true, setup: func(t *testing.T, dir string) string {
			p := inDir(0o755)(t, dir)
			mustLchown(t, filepath.Dir(p), otherUID, otherGID)
			return p
		}, want: []string{"directory %d", fmt.Sprintf("is owned by uid %d", otherUID)}},
		{name: "Kubernetes Secret, defaultMode 0644", setup: kubeSecret(0o644), want: []string{"(the real file of ", "mode 0644", "chmod 600 %s"}},
		{name: "Kubernetes Secret, defaultMode 0400", setup: kubeSecret(0o400), want: nil},
		{name: "Kubernetes Secret, 0400 + fsGroup (0440 root:fsGroup)", root: true, setup: func(t *testing.T, dir string) string {
			p := kubeSecret(0o440)(t, dir)
			real, _ := filepath.EvalSymlinks(p)
			mustLchown(t, real, 0, egid)
			return p
		}, want: nil},
		{name: "symlink owned by another user", root: true, setup: func(t *testing.T, dir string) string {
			p := secret(0o600)(t, dir)
			link := filepath.Join(dir, "link")
			if err := os.Symlink(p, link); err != nil {
				t.Fatal(err)
			}
			mustLchown(t, link, otherUID, otherGID)
			return link
		}, want: []string{"symlink " + "%d/link", fmt.Sprintf("owned by uid %d", otherUID)}},
		{name: "link in a writable directory to a safe file", setup: func(t *testing.T, dir string) string {
			p := secret(0o600)(t, dir)
			open := filepath.Join(dir, "open")
			os.Mkdir(open, 0o700)
			mustChmod(t, open, 0o777)
			link := filepath.Join(open, "link")
			if err := os.Symlink(p, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, want: []string{"directory %d/open", "chmod go-w %d/open"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				needRoot(t)
			}
			dir := t.TempDir()
			path := tc.setup(t, dir)
			real, err := filepath.EvalSymlinks(path)
			if err != nil {
				t.Fatal(err)
			}
			got := insecureFile(path)
			t.Logf("%s: %q", tc.name, got)
			if len(tc.want) == 0 {
				if got != "" {
					t.Fatalf("refused: %s", got)
				}
				return
			}
			if got == "" {
				t.Fatal("accepted; want refused")
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(strings.ReplaceAll(w, "%s", real), "%d", dir)
				if !strings.Contains(got, w) {
					t.Errorf("problem %q does not say %q", got, w)
				}
			}
		})
	}
}

func wantIf(cond bool, want ...string) []string {
	if cond {
		return want
	}
	return nil
}

// secret writes dir/key with mode.
func secret(mode os.FileMode) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "key")
		if err := os.WriteFile(p, []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustChmod(t, p, mode)
		return p
	}
}

// owned is secret, then chown to uid:gid.
func owned(mode os.FileMode, uid, gid int) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		p := secret(mode)(t, dir)
		mustLchown(t, p, uid, gid)
		return p
	}
}

// inDir is a 0600 secret in a subdirectory of mode mode.
func inDir(mode os.FileMode) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		p := secret(0o600)(t, sub)
		mustChmod(t, sub, mode)
		return p
	}
}

// kubeSecret lays out a Secret volume as the kubelet does: dir/token ->
// ..data/token, ..data -> ..2026_12_01_…, the real file inside with mode.
func kubeSecret(mode os.FileMode) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		v := filepath.Join(dir, "..2026_12_01_21_00_00.000000001")
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		secret(mode)(t, v)
		os.Symlink(filepath.Base(v), filepath.Join(dir, "..data"))
		os.Symlink("..data/key", filepath.Join(dir, "token"))
		return filepath.Join(dir, "token")
	}
}

// TestSecretFileModes: each kind of secret file reference is refused when
// others can read it, with its line, the file and the chmod; a directory
// others can write is refused too; insecure_file_modes: warn loads the
// config and reports each as a warning instead.
func TestSecretFileModes(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"token": "tok", "user": "user-secret", "key": strings.Repeat("k", 40)}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body := fmt.Sprintf(`roles: [{name: app}]
clients:
  - name: c
    match:
      token: {file: %s}
    roles: [app]
sts:
  local:
    signing_key_file: %s
    users:
      - name: u
        access_key_id: AKIAIOSFODNN7EXAMPLE
        secret_access_key: {file: %s}
`, filepath.Join(dir, "token"), filepath.Join(dir, "key"), filepath.Join(dir, "user"))
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(body)
	if _, err := Load(cfgPath); err != nil {
		t.Fatalf("0600 files refused: %v", err)
	}

	for _, name := range []string{"token", "user", "key"} {
		mustChmod(t, filepath.Join(dir, name), 0o644)
	}
	_, err := Load(cfgPath)
	if err == nil {
		t.Fatal("0644 secret files accepted")
	}
	t.Logf("%v", err)
	// Root's own group may read root's file (see TestInsecureFile).
	who := "its group and other users"
	if os.Geteuid() == 0 {
		who = "other users"
	}
	want := []Problem{
		{5, fmt.Sprintf("clients[c].match.token: %[1]s is readable by %[2]s (mode 0644): chmod 600 %[1]s (or set insecure_file_modes: warn)", filepath.Join(dir, "token"), who)},
		{13, fmt.Sprintf("sts.local.users[u].secret_access_key: %[1]s is readable by %[2]s (mode 0644): chmod 600 %[1]s (or set insecure_file_modes: warn)", filepath.Join(dir, "user"), who)},
		{9, fmt.Sprintf("sts.local.signing_key_file: %[1]s is readable by %[2]s (mode 0644): chmod 600 %[1]s (or set insecure_file_modes: warn)", filepath.Join(dir, "key"), who)},
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a *config.Error: %v", err)
	}
	if !reflect.DeepEqual(ce.Problems, want) {
		t.Errorf("problems:\n got: %q\nwant: %q", ce.Problems, want)
	}

	// Back to 0600, but the directory is writable by everyone.
	for _, name := range []string{"token", "user", "key"} {
		mustChmod(t, filepath.Join(dir, name), 0o600)
	}
	mustChmod(t, dir, 0o777)
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), "chmod go-w "+dir) {
		t.Fatalf("a secret in a world-writable directory: %v", err)
	}
	mustChmod(t, dir, 0o700)

	// The operator's explicit downgrade.
	mustChmod(t, filepath.Join(dir, "key"), 0o644)
	write("insecure_file_modes: warn\n" + body)
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatalf("insecure_file_modes: warn still refuses: %v", err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "line 10: sts.local.signing_key_file: "+filepath.Join(dir, "key")+" is readable") {
		t.Fatalf("warnings = %q", c.Warnings)
	}
	write("insecure_file_modes: allow\n" + body)
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), `line 1: insecure_file_modes must be "refuse" or "warn", not "allow"`) {
		t.Fatalf("insecure_file_modes: allow: %v", err)
	}
}

// TestWatchChmodIsAChange: making a token file readable by others is a
// failed reload (the running config stays), and the chmod that fixes it
// applies the config again, although no byte changed.
func TestWatchChmodIsAChange(t *testing.T) {
	r := newWatchRig(t, "")
	r.write(r.path, r.cfgText("us-east-1"))
	r.startWith(zaptest.NewLogger(t), WatcherOptions{Debounce: 20 * time.Millisecond, Poll: time.Hour})
	mustChmod(t, r.tokens, 0o644)
	if !r.waitFor(func() bool { _, f := r.counts(); return f > 0 }) {
		t.Fatal("a token file made readable by others was not reported")
	}
	r.mu.Lock()
	msg := r.failed[0].Error()
	r.mu.Unlock()
	if !strings.Contains(msg, "chmod 600 "+r.tokens) {
		t.Fatalf("failure does not give the fix: %s", msg)
	}
	mustChmod(t, r.tokens, 0o600)
	r.waitApplied("us-east-1")
}
