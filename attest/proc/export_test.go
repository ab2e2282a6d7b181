//go:build linux

package proc

// CgroupTTL is cgroupTTL for the external tests.
const CgroupTTL = cgroupTTL

// MaxHashBytes is maxHashBytes for the external tests.
const MaxHashBytes = maxHashBytes
