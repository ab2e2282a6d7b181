package config

import (
	"strings"
	"text/template/parse"

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
			raw, ok := r.RenderSessionName(cl.Name, rn, sessionData{Client: cl.Name, Role: rn})
			if !ok {
				continue
			}
			name := stsrules.SanitizeSessionName(raw)
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

// RenderSessionName renders the role's session_name for a caller of client
// asking for role: by QuickSessionName when the template allows it, else by
// executing it on data (which must have the fields the template reads). ok
// is false when the role has no template or executing it fails. The name
// is not yet sanitised.
func (r *Role) RenderSessionName(client, role string, data any) (name string, ok bool) {
	if name, ok := r.QuickSessionName(client, role); ok {
		return name, true
	}
	if r.SessionTemplate == nil {
		return "", false
	}
	var b strings.Builder
	if r.SessionTemplate.Execute(&b, data) != nil {
		return "", false
	}
	return b.String(), true
}

// QuickSessionName renders the role's session_name for a caller of client
// asking for role when the template reads nothing but .Client and .Role
// (the default, and the common case): by walking its parse tree, without
// executing it, which a config of ten thousand clients would do for each
// client when it is validated and again when it is compiled. ok is false
// for any other template (another field, a function, a pipeline, a
// sub-template); the result is then the template's to render.
func (r *Role) QuickSessionName(client, role string) (name string, ok bool) {
	t := r.SessionTemplate
	if t == nil || t.Tree == nil || t.Tree.Root == nil {
		return "", false
	}
	var b strings.Builder
	for _, n := range t.Tree.Root.Nodes {
		switch x := n.(type) {
		case *parse.TextNode:
			b.Write(x.Text)
		case *parse.ActionNode:
			p := x.Pipe
			if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
				return "", false
			}
			f, isField := p.Cmds[0].Args[0].(*parse.FieldNode)
			if !isField || len(f.Ident) != 1 {
				return "", false
			}
			switch f.Ident[0] {
			case "Client":
				b.WriteString(client)
			case "Role":
				b.WriteString(role)
			default:
				return "", false
			}
		default:
			return "", false
		}
	}
	return b.String(), true
}
