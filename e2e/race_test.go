//go:build race

package e2e

// raceEnabled: the binaries under test are built with -race too, which
// reuses the packages `go test -race` already compiled.
const raceEnabled = true
