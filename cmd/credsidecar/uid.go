package main

import "github.com/credsidecar/credsidecar/imds"

func uidLookup() imds.UIDLookup { return imds.SockDiagUID() }
