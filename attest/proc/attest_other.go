//go:build !linux

package proc

import (
	"errors"

	"github.com/credsidecar/credsidecar/agent"
)

// Options configure an Attestor (unused outside Linux).
type Options struct {
	Hash       bool
	ExeMatched bool
	Outcome    func(string)
}

// Attestor is unavailable outside Linux: process conditions fail closed.
type Attestor struct{}

// New fails outside Linux.
func New(Options) (*Attestor, []string, error) {
	return nil, nil, errors.New("attest: process attestation needs Linux")
}

// Attest always fails outside Linux.
func (a *Attestor) Attest(uint32, uint64) (*agent.Process, error) {
	return nil, errors.New("attest: process attestation needs Linux")
}

// ByPIDHolding always fails outside Linux.
func (a *Attestor) ByPIDHolding(int, uint64) (*agent.Process, error) {
	return nil, errors.New("attest: process attestation needs Linux")
}

// SetHash does nothing outside Linux.
func (a *Attestor) SetHash(bool) {}

// SetExeMatched does nothing outside Linux.
func (a *Attestor) SetExeMatched(bool) {}

// Root is "" outside Linux.
func (a *Attestor) Root() string { return "" }

// Hashing reports false: nothing is attested here.
func (a *Attestor) Hashing() bool { return false }

// ExeMatched reports false: nothing is attested here.
func (a *Attestor) ExeMatched() bool { return false }
