package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/credsidecar/credsidecar/config"
)

func TestWorkloadKeys(t *testing.T) {
	const head = "sts: { mode: local }\nroles: [{name: app}]\nclients:\n"
	for _, tc := range []struct {
		name, clients string
		problems      []want
		warning       string
	}{
		{"all keys", `  - name: a
    match:
      systemd_unit: billing.service
      cgroup: "/system.slice/*"
      exe: /usr/local/bin/billing
      exe_sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    roles: [app]
  - name: b
    match: { systemd_user_unit: "app-*.service", uids: [1000] }
    roles: [app]
  - name: c
    match: { container: { labels: { credsidecar.role: web }, name: "web-*", image: "example/web:*" } }
    roles: [app]
docker: { host: unix:///run/docker.sock }
`, nil, ""},
		{"unknown key", "  - {name: a, match: {systemd_units: x.service}, roles: [app]}\n", []want{{4, "field systemd_units is not a known key"}}, ""},
		{"unknown container key", "  - {name: a, match: {container: {label: {a: b}}}, roles: [app]}\n", []want{{4, "field label is not a known key"}}, ""},
		{"short hash", "  - {name: a, match: {exe_sha256: abc, uids: [1]}, roles: [app]}\n", []want{{4, "must be 64 hex characters"}}, ""},
		{"user unit alone", "  - {name: a, match: {systemd_user_unit: app.service}, roles: [app]}\n", []want{{4, "systemd_user_unit needs uids"}}, ""},
		{"unit with a slash", "  - {name: a, match: {systemd_unit: a/b.service}, roles: [app]}\n", []want{{4, `names a unit, which has no "/"`}}, ""},
		{"invalid glob", "  - {name: a, match: {cgroup: \"/a\\x01\"}, roles: [app]}\n", []want{{4, "not a valid glob: it holds a control character"}}, ""},
		{"relative cgroup", "  - {name: a, match: {cgroup: system.slice/x}, roles: [app]}\n", []want{{4, `must start with "/"`}}, ""},
		{"empty container", "  - {name: a, match: {container: {}}, roles: [app]}\n", []want{{4, "needs at least one of labels, name, image"}}, ""},
		{"tcp docker host", "  - {name: a, match: {container: {name: x}}, roles: [app]}\ndocker: {host: tcp://127.0.0.1:2375}\n", []want{{5, "must be unix:///PATH"}}, ""},
		{"exe alone warns", "  - {name: a, match: {exe: /usr/bin/python3}, roles: [app]}\n", nil, "only conditions are exe/exe_sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(head + tc.clients))
			if tc.problems == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.warning != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], tc.warning)) {
					t.Fatalf("warnings %q, want one containing %q", c.Warnings, tc.warning)
				}
				if tc.warning == "" && len(c.Warnings) != 0 {
					t.Fatalf("unexpected warnings %q", c.Warnings)
				}
				return
			}
			var pe *config.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *config.Error", err)
			}
			checkProblems(t, pe.Problems, tc.problems)
		})
	}
}

// TestNeedsExe: process attestation must find every holder of a socket
// when a client matches on the executable or a template reads it.
func TestNeedsExe(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
		want      bool
	}{
		{"unit only", "roles: [{name: app}]\nclients: [{name: a, match: {systemd_unit: a.service}, roles: [app]}]\n", false},
		{"exe", "roles: [{name: app}]\nclients: [{name: a, match: {exe: /bin/a, uids: [1]}, roles: [app]}]\n", true},
		{"exe_sha256", "roles: [{name: app}]\nclients: [{name: a, match: {exe_sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef, uids: [1]}, roles: [app]}]\n", true},
		{"session name", "roles: [{name: app, session_name: \"x-{{.Exe}}\"}]\nclients: [{name: a, match: {systemd_unit: a.service}, roles: [app]}]\n", true},
		{"tag", "roles: [{name: app, tags: {bin: \"{{.ExeSHA256}}\"}}]\nclients: [{name: a, match: {systemd_unit: a.service}, roles: [app]}]\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("sts: { mode: local }\n" + tc.yml))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.NeedsExe(); got != tc.want {
				t.Fatalf("NeedsExe() = %v, want %v", got, tc.want)
			}
		})
	}
}
