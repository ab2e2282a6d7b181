//go:build !linux

package imds

// SockDiagUID is unavailable off Linux: uid conditions fail closed.
func SockDiagUID() UIDLookup { return nil }
