package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigDockerDown: a container match without a reachable Docker
// API is a warning, not an error (serve still starts and fails closed).
func TestCheckConfigDockerDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	path := writeConfig(t, `sts: {mode: local}
roles: [{name: web}]
clients: [{name: w, match: {container: {labels: {credsidecar.client: w}}}, roles: [web]}]
docker: {host: unix://`+sock+`}
`)
	var out bytes.Buffer
	if err := checkConfig(path, &out); err != nil {
		t.Fatalf("check-config failed: %v", err)
	}
	if !strings.Contains(out.String(), "warning: clients match on container, but the Docker API at unix://"+sock+" does not answer") {
		t.Fatalf("no warning about the Docker API:\n%s", out.String())
	}
}
