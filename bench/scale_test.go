package main

import (
	"testing"
)

// TestScaleLoad runs the load timing on 1 000 clients (it must work; its
// figures are the bench's to judge, on 10 000).
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
	t.Logf("load %.0f ms (%.0f CPU), reload %.0f ms (%.0f CPU)", sf.LoadMs, sf.LoadCPUMs, sf.ReloadMs, sf.ReloadCPUMs)
}
