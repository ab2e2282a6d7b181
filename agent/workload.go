package agent

import (
	"fmt"
	"strings"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/glob"
)

// Process is what attestation established about the host process behind a
// connection. An attribute that could not be established is "": conditions
// on it fail closed.
type Process struct {
	// PID is the process id at the time of attestation (for logs only).
	PID int
	// Unit is the system manager's unit holding the process, as
	// sd_pid_get_unit computes it (user@UID.service for a user's processes).
	Unit string
	// UserUnit is the user manager's unit, for processes below user@UID.service.
	UserUnit string
	// Cgroup is the process's cgroup path below systemd's root.
	Cgroup string
	// Exe is the executable's path, when it can be believed.
	Exe string
	// ExeSHA256 is the hex SHA-256 of the executable ("" unless some
	// client matches on it).
	ExeSHA256 string
}

// Container is a Docker container as the Engine API describes it.
type Container struct {
	// ID is the full container id; Name its name without the leading "/".
	ID, Name string
	// Image is the reference the container was created from; ImageID the
	// image's id ("sha256:…"); RepoDigests the image's "repo@sha256:…".
	Image, ImageID string
	RepoDigests    []string
	// Labels are set on the container itself (the image's own labels
	// removed unless the container overrides them).
	Labels map[string]string
}

// workloadMatch is a client's conditions on its process or container.
type workloadMatch struct {
	w *config.Workload // the config's own (never modified)
}

func compileWorkload(w *config.Workload) *workloadMatch {
	if w.Empty() {
		return nil
	}
	return &workloadMatch{w: w}
}

// attrs memoizes one identify call's process and container lookups (the
// getters memoize per connection too; this saves the repeated errors).
type attrs struct {
	c                 *Caller
	procDone, ctrDone bool
	proc              *Process
	procErr           error
	ctr               *Container
	ctrErr            error
}

func (a *attrs) process() (*Process, error) {
	if !a.procDone {
		a.procDone = true
		if a.c.Process == nil {
			a.procErr = fmt.Errorf("process attestation is not available")
		} else {
			a.proc, a.procErr = a.c.Process()
			if a.proc == nil && a.procErr == nil {
				a.procErr = fmt.Errorf("no process found")
			}
		}
	}
	return a.proc, a.procErr
}

func (a *attrs) container() (*Container, error) {
	if !a.ctrDone {
		a.ctrDone = true
		if a.c.Container == nil {
			a.ctrErr = fmt.Errorf("container lookup is not available")
		} else {
			a.ctr, a.ctrErr = a.c.Container()
			if a.ctr == nil && a.ctrErr == nil {
				a.ctrErr = fmt.Errorf("no container found")
			}
		}
	}
	return a.ctr, a.ctrErr
}

// holds reports whether every workload condition holds (the request
// path: no message is built).
func (m *workloadMatch) holds(a *attrs) bool { return m.eval(a).key == "" }

// check returns "" when every workload condition holds, else the failing
// key and why (for explain).
func (m *workloadMatch) check(a *attrs) (key, why string) {
	f := m.eval(a)
	return f.key, f.why()
}

// mismatch is the first workload condition that failed, with what its
// message needs; the message is built only for explain (a refusal on the
// request path must not cost a Sprintf per client tried).
type mismatch struct {
	key  string // "" when every condition holds
	kind mismatchKind
	// what, pattern and val are the attribute, the condition and the
	// caller's value; pid the process's.
	what, pattern, val string
	pid                int
	err                error
	ctr                *Container
	label              string
}

type mismatchKind uint8

const (
	noProcess mismatchKind = iota
	unknownAttr
	attrMismatch
	noHash
	hashMismatch
	noContainer
	noLabel
	labelMismatch
	nameMismatch
	imageMismatch
)

func (f mismatch) why() string {
	if f.key == "" {
		return ""
	}
	switch f.kind {
	case noProcess:
		return fmt.Sprintf("the caller's process is unknown (%v)", f.err)
	case unknownAttr:
		return fmt.Sprintf("the caller's %s is unknown (pid %d); %s %q", f.what, f.pid, f.key, f.pattern)
	case attrMismatch:
		return fmt.Sprintf("%s %q (pid %d) does not match %q", f.what, f.val, f.pid, f.pattern)
	case noHash:
		return fmt.Sprintf("the caller's executable could not be hashed (pid %d)", f.pid)
	case hashMismatch:
		return fmt.Sprintf("the executable's SHA-256 %s (pid %d) is not %s", f.val, f.pid, strings.ToLower(f.pattern))
	case noContainer:
		return fmt.Sprintf("the caller's container is unknown (%v)", f.err)
	case noLabel:
		return fmt.Sprintf("container %q has no label %q of its own", f.ctr.Name, f.label)
	case labelMismatch:
		return fmt.Sprintf("container %q has label %s=%q, not %q", f.ctr.Name, f.label, f.val, f.pattern)
	case nameMismatch:
		return fmt.Sprintf("container name %q does not match %q", f.ctr.Name, f.pattern)
	default:
		return fmt.Sprintf("container %q's image %q (%s) does not match %q", f.ctr.Name, f.ctr.Image, f.ctr.ImageID, f.pattern)
	}
}

// eval finds the first workload condition that fails for the caller.
func (m *workloadMatch) eval(a *attrs) mismatch {
	w := m.w
	if w.NeedsProcess() {
		p, err := a.process()
		if err != nil {
			return mismatch{key: firstProcessKey(w), kind: noProcess, err: err}
		}
		for _, c := range [...]struct{ key, pattern, val, what string }{
			{"systemd_unit", w.SystemdUnit, p.Unit, "unit"},
			{"systemd_user_unit", w.SystemdUserUnit, p.UserUnit, "user unit"},
			{"cgroup", w.CGroup, p.Cgroup, "cgroup"},
			{"exe", w.Exe, p.Exe, "executable"},
		} {
			if c.pattern == "" {
				continue
			}
			if c.val == "" {
				return mismatch{key: c.key, kind: unknownAttr, what: c.what, pattern: c.pattern, pid: p.PID}
			}
			if !glob.Match(c.pattern, c.val) {
				return mismatch{key: c.key, kind: attrMismatch, what: c.what, pattern: c.pattern, val: c.val, pid: p.PID}
			}
		}
		if w.ExeSHA256 != "" {
			if p.ExeSHA256 == "" {
				return mismatch{key: "exe_sha256", kind: noHash, pid: p.PID}
			}
			if !strings.EqualFold(p.ExeSHA256, w.ExeSHA256) {
				return mismatch{key: "exe_sha256", kind: hashMismatch, val: p.ExeSHA256, pattern: w.ExeSHA256, pid: p.PID}
			}
		}
	}
	if cm := w.Container; cm != nil {
		ctr, err := a.container()
		if err != nil {
			return mismatch{key: "container", kind: noContainer, err: err}
		}
		return containerMismatch(cm, ctr)
	}
	return mismatch{}
}

func firstProcessKey(w *config.Workload) string {
	switch {
	case w.SystemdUnit != "":
		return "systemd_unit"
	case w.SystemdUserUnit != "":
		return "systemd_user_unit"
	case w.CGroup != "":
		return "cgroup"
	case w.Exe != "":
		return "exe"
	default:
		return "exe_sha256"
	}
}

// containerMismatch is the first condition of cm that ctr fails (key ""
// when none).
func containerMismatch(cm *config.ContainerMatch, ctr *Container) mismatch {
	for k, v := range cm.Labels {
		got, ok := ctr.Labels[k]
		if !ok {
			return mismatch{key: "container", kind: noLabel, ctr: ctr, label: k}
		}
		if got != v {
			return mismatch{key: "container", kind: labelMismatch, ctr: ctr, label: k, val: got, pattern: v}
		}
	}
	if cm.Name != "" && !glob.Match(cm.Name, ctr.Name) {
		return mismatch{key: "container", kind: nameMismatch, ctr: ctr, pattern: cm.Name}
	}
	if cm.Image != "" && !imageMatches(cm.Image, ctr) {
		return mismatch{key: "container", kind: imageMismatch, ctr: ctr, pattern: cm.Image}
	}
	return mismatch{}
}

// imageMatches compares an image ID or digest exactly (tags move) and a
// reference as a glob.
func imageMatches(pattern string, ctr *Container) bool {
	switch {
	case strings.HasPrefix(pattern, "sha256:"):
		return ctr.ImageID != "" && pattern == ctr.ImageID
	case strings.Contains(pattern, "@sha256:"):
		for _, d := range ctr.RepoDigests {
			if d == pattern {
				return true
			}
		}
		return false
	default:
		return ctr.Image != "" && glob.Match(pattern, ctr.Image)
	}
}

// templateNeeds says which lazy attributes a template reads.
type templateNeeds struct{ proc, container bool }

func workloadNeeds(tmpl string) templateNeeds {
	return templateNeeds{
		proc:      strings.Contains(tmpl, ".Unit") || strings.Contains(tmpl, ".Cgroup") || strings.Contains(tmpl, ".Exe"),
		container: strings.Contains(tmpl, ".Container"),
	}
}
