//go:build !linux

package imds

// SockDiagUID is unavailable off Linux: uid conditions fail closed.
func SockDiagUID() UIDLookup { return nil }

// SockDiagSocket is unavailable off Linux: uid and process conditions fail closed.
func SockDiagSocket() SocketLookup { return nil }
