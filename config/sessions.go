package config

import (
	"strings"

	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// perCallerFields are the session_name template fields that differ between
// callers of one client; a template without any of them gives every
// caller of a client the same session name.
var perCallerFields = []string{".UID", ".Addr", ".Unit", ".Cgroup", ".Exe", ".Container", ".Subject", ".Claims"}

// sessionData mirrors what the agent's session_name templates see, for
// rendering the constant ones here.
type sessionData struct{ Client, Role, UID, Addr string }

// checkSessionNames refuses two clients that would give one role the same
// constant session name: they would share one session (one AccessKeyId,
// one assumed-role ARN), which breaks ${aws:userid}-scoped policies and
// makes CloudTrail unable to tell them apart.
func (v *validator) checkSessionNames(c *Config) {
	type owner struct {
		client string
		idx    int
	}
	seen := map[string]owner{} // role + "\x00" + session name -> first client
	for i := range c.Clients {
		cl := &c.Clients[i]
		for j, rn := range cl.Roles {
			r, ok := c.RoleByName(rn)
			if !ok || r.SessionTemplate == nil || usesPerCallerFields(r.SessionName) {
				continue
			}
			var b strings.Builder
			if r.SessionTemplate.Execute(&b, sessionData{Client: cl.Name, Role: rn}) != nil {
				continue
			}
			name := stsrules.SanitizeSessionName(b.String())
			key := rn + "\x00" + name
			if first, dup := seen[key]; dup && first.client != cl.Name {
				v.errf(p("clients", i, "roles", j), "clients %q and %q would share role %q's session %q; make its session_name tell them apart (e.g. include {{.Client}})", first.client, cl.Name, rn, name)
				continue
			}
			seen[key] = owner{cl.Name, i}
		}
	}
}

func usesPerCallerFields(tmpl string) bool {
	for _, f := range perCallerFields {
		if strings.Contains(tmpl, f) {
			return true
		}
	}
	return false
}
