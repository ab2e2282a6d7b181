package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/credsidecar/credsidecar/internal/charclass"
	"github.com/credsidecar/credsidecar/internal/glob"
)

// DefaultDockerHost is the Engine API socket container matches ask.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Workload holds the match conditions on the program behind a connection:
// a host process (found through its socket) or a Docker container (found by
// its address). Every string is a glob (internal/glob) except ExeSHA256.
type Workload struct {
	// SystemdUnit is the system manager's unit holding the process.
	SystemdUnit string `yaml:"systemd_unit"`
	// SystemdUserUnit is a user manager's unit; it needs uids in the same
	// match, since any user can name a unit anything.
	SystemdUserUnit string `yaml:"systemd_user_unit"`
	// CGroup is the process's cgroup path below systemd's root, "/"-rooted.
	CGroup string `yaml:"cgroup"`
	// Exe is the executable's path in the sidecar's mount namespace.
	Exe string `yaml:"exe"`
	// ExeSHA256 is the hex SHA-256 of the executable's contents.
	ExeSHA256 string `yaml:"exe_sha256"`
	// Container matches a Docker container.
	Container *ContainerMatch `yaml:"container"`
}

// ContainerMatch matches a Docker container found through the Engine API.
type ContainerMatch struct {
	// Labels must all be set, with these exact values, on the container
	// itself: a label inherited from its image does not count.
	Labels map[string]string `yaml:"labels"`
	// Name is a glob on the container's name (without Docker's leading "/").
	Name string `yaml:"name"`
	// Image is a glob on the image reference the container was created
	// from, or an image ID ("sha256:…") or a repo digest ("repo@sha256:…"),
	// which are compared exactly.
	Image string `yaml:"image"`
}

// Docker configures the Engine API client.
type Docker struct {
	// Host is the Engine API address: unix:///PATH only ("" =
	// DefaultDockerHost).
	Host string `yaml:"host"`
}

// HostOrDefault is the Engine API address, DefaultDockerHost when unset.
func (d Docker) HostOrDefault() string {
	if d.Host == "" {
		return DefaultDockerHost
	}
	return d.Host
}

// Empty reports whether w has no condition.
func (w Workload) Empty() bool {
	return w.SystemdUnit == "" && w.SystemdUserUnit == "" && w.CGroup == "" && w.Exe == "" && w.ExeSHA256 == "" && w.Container == nil
}

// NeedsProcess reports whether w has a condition on the host process.
func (w Workload) NeedsProcess() bool {
	return w.SystemdUnit != "" || w.SystemdUserUnit != "" || w.CGroup != "" || w.Exe != "" || w.ExeSHA256 != ""
}

// NeedsContainers reports whether some client matches on containers, the
// only case in which the Docker API is asked anything.
func (c *Config) NeedsContainers() bool {
	for i := range c.Clients {
		if c.Clients[i].Match.Container != nil {
			return true
		}
	}
	return false
}

// NeedsProcesses reports whether some client matches on host processes.
func (c *Config) NeedsProcesses() bool {
	for i := range c.Clients {
		if c.Clients[i].Match.NeedsProcess() {
			return true
		}
	}
	return false
}

var (
	hexChars = charclass.Class(charclass.HexDigit)
	// labelKeyChars is Docker's label key alphabet (the first character
	// alphanumeric).
	labelKeyChars = charclass.ASCII(false, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")
)

// validLabelKey reports whether k is a Docker label key:
// [A-Za-z0-9][A-Za-z0-9._/-]*.
func validLabelKey(k string) bool {
	return k != "" && charclass.Word(rune(k[0])) && k[0] != '_' && labelKeyChars.All(k)
}

func (v *validator) validateWorkload(cl *Client, at func(k ...any) []any) {
	w := &cl.Match.Workload
	checkGlob := func(key, val string) {
		if val == "" {
			return
		}
		if why := glob.Valid(val); why != "" {
			v.errf(at("match", key), "client %q: match.%s %q is not a valid glob: %s", cl.Name, key, val, why)
		}
	}
	checkGlob("systemd_unit", w.SystemdUnit)
	checkGlob("systemd_user_unit", w.SystemdUserUnit)
	checkGlob("cgroup", w.CGroup)
	checkGlob("exe", w.Exe)
	for _, u := range []struct{ key, val string }{{"systemd_unit", w.SystemdUnit}, {"systemd_user_unit", w.SystemdUserUnit}} {
		if strings.Contains(u.val, "/") {
			v.errf(at("match", u.key), "client %q: match.%s %q names a unit, which has no \"/\" (use cgroup for paths)", cl.Name, u.key, u.val)
		}
	}
	if w.CGroup != "" && !strings.HasPrefix(w.CGroup, "/") && !strings.HasPrefix(w.CGroup, "*") {
		v.errf(at("match", "cgroup"), "client %q: match.cgroup %q must start with \"/\" (paths are anchored at systemd's root)", cl.Name, w.CGroup)
	}
	if w.Exe != "" && !strings.HasPrefix(w.Exe, "/") && !strings.HasPrefix(w.Exe, "*") {
		v.errf(at("match", "exe"), "client %q: match.exe %q must be an absolute path", cl.Name, w.Exe)
	}
	if w.ExeSHA256 != "" && (len(w.ExeSHA256) != 64 || !hexChars.All(w.ExeSHA256)) {
		v.errf(at("match", "exe_sha256"), "client %q: match.exe_sha256 must be 64 hex characters (a SHA-256 digest), not %d characters", cl.Name, len(w.ExeSHA256))
	}
	if w.SystemdUserUnit != "" && len(cl.Match.UIDs) == 0 {
		v.errf(at("match", "systemd_user_unit"), "client %q: match.systemd_user_unit needs uids in the same match: any user can start a user unit of any name", cl.Name)
	}
	if (w.Exe != "" || w.ExeSHA256 != "") && cl.Match.Token == nil && len(cl.Match.SourceCIDRs) == 0 && len(cl.Match.UIDs) == 0 &&
		w.SystemdUnit == "" && w.SystemdUserUnit == "" && w.CGroup == "" && w.Container == nil {
		v.warnings = append(v.warnings, fmt.Sprintf("line %d: client %q: its only conditions are exe/exe_sha256: any user who can run that binary is this client (and an interpreter's exe is the interpreter); add uids, systemd_unit or cgroup", v.line(at("match")...), cl.Name))
	}
	if c := w.Container; c != nil {
		if len(c.Labels) == 0 && c.Name == "" && c.Image == "" {
			v.errf(at("match", "container"), "client %q: match.container needs at least one of labels, name, image", cl.Name)
		}
		for k := range c.Labels {
			if !validLabelKey(k) {
				v.errf(at("match", "container", "labels"), "client %q: match.container.labels: %q is not a Docker label key", cl.Name, k)
			}
		}
		if c.Name != "" {
			checkGlob("container", c.Name)
		}
		if c.Image != "" {
			checkGlob("container", c.Image)
		}
	}
}

func (v *validator) validateDocker(c *Config) {
	if c.Docker.Host == "" {
		return
	}
	u, err := url.Parse(c.Docker.Host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		v.errf(p("docker", "host"), "docker.host %q must be unix:///PATH (the Engine API's socket)", c.Docker.Host)
	}
}

// NeedsExe reports whether some client's match (exe, exe_sha256) or some
// role's session name or tag template (.Exe, .ExeSHA256) reads the
// caller's executable: process attestation must then find every process
// holding a connection's socket, not just one.
func (c *Config) NeedsExe() bool {
	for i := range c.Clients {
		if w := c.Clients[i].Match.Workload; w.Exe != "" || w.ExeSHA256 != "" {
			return true
		}
	}
	for i := range c.Roles {
		r := &c.Roles[i]
		if strings.Contains(r.SessionName, ".Exe") {
			return true
		}
		for _, v := range r.Tags {
			if strings.Contains(v, ".Exe") {
				return true
			}
		}
	}
	return false
}

// NeedsExeHash reports whether some client matches on exe_sha256.
func (c *Config) NeedsExeHash() bool {
	for i := range c.Clients {
		if c.Clients[i].Match.ExeSHA256 != "" {
			return true
		}
	}
	return false
}
