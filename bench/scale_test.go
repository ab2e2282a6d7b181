package main

import (
	"strings"
	"testing"
)

// TestScaleLoad runs the load timing on 1 000 clients (it must work and
// time something; its figures are the bench's to judge, on 10 000). The
// reload it times must change the config: scaleLoad edits a role's
// duration, which the scale config has to hold.
func TestScaleLoad(t *testing.T) {
	dir := t.TempDir()
	jwks, err := writeJWKS(dir)
	if err != nil {
		t.Fatal(err)
	}
	sf := &scaleFigures{}
	if err := scaleLoad(dir, jwks, 1000, sf, t.Logf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(scaleConfig(1000, false, jwks), "duration: 1h") {
		t.Error("the scale config has no \"duration: 1h\" for scaleLoad to change: its reloads time a config that did not change")
	}
	if sf.LoadClients != 1000 || sf.LoadMs <= 0 || sf.ReloadMs <= 0 {
		t.Errorf("figures not recorded: %+v", *sf)
	}
	t.Logf("load %.0f ms (%.0f CPU), reload %.0f ms (%.0f CPU)", sf.LoadMs, sf.LoadCPUMs, sf.ReloadMs, sf.ReloadCPUMs)
}
