// Package e2e holds end-to-end tests that need a real host: network
// namespaces, root, the built binaries. Each test skips with a message where
// the host cannot run it (and fails instead when CI=true).
package e2e
