package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const examplePath = "../../config.example.yaml"

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckConfig(t *testing.T) {
	// Two problems, lines 2 and 5: a typo'd key and a bad duration.
	broken := writeConfig(t, `region: us-east-1
listn: ["127.0.0.1:8169"]
roles:
  - name: app
    duration: 1hour
`)
	warned := writeConfig(t, "roles:\n  - name: app\n    duration: 20m\n")
	for _, tc := range []struct {
		name     string
		args     []string
		env      string // CREDSIDECAR_CONFIG
		code     int
		stdout   []string
		stderr   []string
		noStdout bool
	}{
		{
			name:   "valid example",
			args:   []string{"check-config", "--config", examplePath},
			code:   0,
			stdout: []string{examplePath + ": ok (2 roles, 2 clients, sts.mode local)"},
		},
		{
			name:   "config from the environment",
			args:   []string{"check-config"},
			env:    examplePath,
			code:   0,
			stdout: []string{": ok (2 roles"},
		},
		{
			name:   "warnings go to stdout",
			args:   []string{"check-config", "--config=" + warned},
			code:   0,
			stdout: []string{`warning: line 3: role "app": duration 20m0s`, "under 15m0s left", ": ok (1 roles, 0 clients"},
		},
		{
			name:     "typo and bad duration",
			args:     []string{"check-config", "--config", broken},
			code:     1,
			stderr:   []string{broken + ": 2 problem(s)", "line 2: field listn is not a known key", `line 5: invalid duration "1hour"`},
			noStdout: true,
		},
		{
			name:     "missing file",
			args:     []string{"check-config", "--config", filepath.Join(t.TempDir(), "nope.yaml")},
			code:     1,
			stderr:   []string{"read config:", "no such file"},
			noStdout: true,
		},
		{
			name:     "unknown flag",
			args:     []string{"check-config", "--confg", examplePath},
			code:     2,
			stderr:   []string{"flag provided but not defined: -confg"},
			noStdout: true,
		},
		{
			name:     "unexpected argument",
			args:     []string{"check-config", "--config", examplePath, "extra"},
			code:     2,
			stderr:   []string{"unexpected arguments: extra"},
			noStdout: true,
		},
		{
			name:   "help",
			args:   []string{"check-config", "--help"},
			code:   0,
			stderr: []string{"Usage: credsidecar check-config"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CREDSIDECAR_CONFIG", tc.env)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			if code := exitCode(err, &stderr); code != tc.code {
				t.Errorf("exit code %d, want %d (err %v, stderr %q)", code, tc.code, err, stderr.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout %q does not contain %q", stdout.String(), s)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), s)
				}
			}
			if tc.noStdout && stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if tc.code == 1 {
				for _, s := range tc.stderr[1:] {
					if err == nil || !strings.Contains(err.Error(), s) {
						t.Errorf("error %v does not contain %q", err, s)
					}
				}
			}
		})
	}
}
