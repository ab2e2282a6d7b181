package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Policies for secret files that other users can read or replace
// (insecure_file_modes).
const (
	// InsecureFileModesRefuse makes such a file a config error (the default).
	InsecureFileModesRefuse = "refuse"
	// InsecureFileModesWarn loads the config and reports each such file as
	// a warning.
	InsecureFileModesWarn = "warn"
)

// secretFile is a file: reference whose content is a secret.
type secretFile struct {
	what string // the config key, as Resolve names it
	path string
	line int
}

// secretFiles lists the files whose content is a secret: client token
// files, users' secret_access_key files and the signing key. (JWKS files
// hold public keys; web_identity_token_file is read by the sources when
// they call STS, not by the config.)
func (c *Config) secretFiles() []secretFile {
	var out []secretFile
	for _, cl := range c.Clients {
		if t := cl.Match.Token; t != nil && t.File != "" {
			out = append(out, secretFile{fmt.Sprintf("clients[%s].match.token", cl.Name), t.File, t.Line})
		}
	}
	for _, u := range c.STS.Local.Users {
		if u.SecretAccessKey.File != "" {
			out = append(out, secretFile{fmt.Sprintf("sts.local.users[%s].secret_access_key", u.Name), u.SecretAccessKey.File, u.SecretAccessKey.Line})
		}
	}
	if c.STS.Local.SigningKeyFile != "" {
		out = append(out, secretFile{"sts.local.signing_key_file", c.STS.Local.SigningKeyFile, c.STS.Local.signingKeyLine})
	}
	return out
}

// checkFileModes reports the secret files of c that other users could read
// or replace (as the snapshot found them): as problems, or as warnings of
// c under insecure_file_modes: warn.
func (s *snapshot) checkFileModes(c *Config) error {
	var problems []Problem
	for _, f := range c.secretFiles() {
		msg := s.files[f.path].insecure
		if msg == "" {
			continue
		}
		if c.InsecureFileModes == InsecureFileModesWarn {
			c.Warnings = append(c.Warnings, fmt.Sprintf("line %d: %s: %s (allowed by insecure_file_modes: warn)", f.line, f.what, msg))
			continue
		}
		problems = append(problems, Problem{f.line, fmt.Sprintf("%s: %s (or set insecure_file_modes: warn)", f.what, msg)})
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

// ancestors returns dir and every directory above it, up to the root.
func ancestors(dir string) []string {
	var out []string
	for {
		out = append(out, dir)
		up := filepath.Dir(dir)
		if up == dir {
			return out
		}
		dir = up
	}
}

// describeMode says who besides the owner can do what with a file of mode
// perm: "readable by other users", "readable by its group and other
// users", ... The group's read bit is left out when groupReadOK.
func describeMode(perm uint32, groupReadOK bool) string {
	can := func(r, w uint32) string {
		var c []string
		if perm&r != 0 && !(groupReadOK && r == 0o040) {
			c = append(c, "readable")
		}
		if perm&w != 0 {
			c = append(c, "writable")
		}
		return strings.Join(c, " and ")
	}
	group, other := can(0o040, 0o020), can(0o004, 0o002)
	switch {
	case group != "" && group == other:
		return group + " by its group and other users"
	case group != "" && other != "":
		return group + " by its group, " + other + " by other users"
	case group != "":
		return group + " by its group"
	default:
		return other + " by other users"
	}
}
