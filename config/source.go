package config

// SourceID is an opaque identity of the credential source these settings
// describe. Sessions one source minted mean nothing to another, so a
// consumer that caches sessions (the agent) drops them when it changes,
// without knowing which fields make a source: the emulated account and the
// identity the sidecar acts as in local mode, the endpoint and source
// credentials' profile in aws mode.
func (s *STS) SourceID() string {
	if s.Mode == ModeLocal {
		return s.Mode + "\x00" + s.Local.AccountID + "\x00" + s.Local.Caller
	}
	return s.Mode + "\x00" + s.Endpoint + "\x00" + s.Profile
}
