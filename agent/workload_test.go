package agent

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/internal/clock"
)

const workloadYAML = `
sts: { mode: local }
roles:
  - {name: billing, session_name: "{{.Unit}}"}
  - {name: web, session_name: "ctr-{{.Container}}"}
  - {name: fixed}
clients:
  - {name: unit, match: {systemd_unit: "billing*.service"}, roles: [billing, fixed]}
  - {name: user, match: {systemd_user_unit: app.service, uids: [1000]}, roles: [fixed]}
  - {name: exe, match: {exe: /usr/local/bin/tool, exe_sha256: AB00000000000000000000000000000000000000000000000000000000000000, uids: [2000]}, roles: [fixed]}
  - {name: ctr, match: {container: {labels: {credsidecar.role: web}, image: "example/web:*"}}, roles: [web]}
  - {name: ctr-digest, match: {container: {image: "example/web@sha256:abc"}}, roles: [fixed]}
`

// counting wraps getters to count calls.
type counting struct{ proc, ctr, uid int }

func (n *counting) caller(p *Process, c *Container, uid uint32) *Caller {
	return &Caller{
		UID:       func() (uint32, error) { n.uid++; return uid, nil },
		Process:   func() (*Process, error) { n.proc++; return p, nilIf(p) },
		Container: func() (*Container, error) { n.ctr++; return c, nilIfC(c) },
	}
}

func nilIf(p *Process) error {
	if p == nil {
		return errors.New("gone")
	}
	return nil
}

func nilIfC(c *Container) error {
	if c == nil {
		return errors.New("unknown")
	}
	return nil
}

func TestWorkloadMatch(t *testing.T) {
	st := compile(parseConfig(t, workloadYAML))
	web := &Container{Name: "web-1", Image: "example/web:2", ImageID: "sha256:1", RepoDigests: []string{"example/web@sha256:abc"}, Labels: map[string]string{"credsidecar.role": "web"}}
	for _, tc := range []struct {
		name string
		p    *Process
		c    *Container
		uid  uint32
		want string
	}{
		{"system unit", &Process{Unit: "billing-eu.service"}, nil, 0, "unit"},
		{"a user's unit of that name is not the system unit", &Process{Unit: "user@1000.service", UserUnit: "billing.service"}, nil, 1000, ""},
		{"user unit with its uid", &Process{Unit: "user@1000.service", UserUnit: "app.service"}, nil, 1000, "user"},
		{"user unit, another uid", &Process{Unit: "user@1001.service", UserUnit: "app.service"}, nil, 1001, ""},
		{"exe and hash", &Process{Exe: "/usr/local/bin/tool", ExeSHA256: "ab00000000000000000000000000000000000000000000000000000000000000"}, nil, 2000, "exe"},
		{"exe, other hash", &Process{Exe: "/usr/local/bin/tool", ExeSHA256: "cd00000000000000000000000000000000000000000000000000000000000000"}, nil, 2000, ""},
		{"exe unknown (another mount namespace)", &Process{Exe: "", ExeSHA256: "ab00000000000000000000000000000000000000000000000000000000000000"}, nil, 2000, ""},
		{"process unknown fails closed", nil, nil, 0, ""},
		{"container by own label and image glob", nil, web, 0, "ctr"},
		{"container without the label", nil, &Container{Name: "x", Image: "example/web:2", RepoDigests: []string{"example/web@sha256:abc"}}, 0, "ctr-digest"},
		{"container with the label, other image", nil, &Container{Name: "x", Image: "other:1", Labels: map[string]string{"credsidecar.role": "web"}}, 0, ""},
		{"container unknown", nil, nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n counting
			cl, err := st.identify(n.caller(tc.p, tc.c, tc.uid))
			got := ""
			if err == nil {
				got = cl.name
			}
			if got != tc.want {
				t.Fatalf("client %q (%v), want %q", got, err, tc.want)
			}
			if n.proc > 1 || n.ctr > 1 {
				t.Errorf("getters called %d/%d times in one decision, want at most once", n.proc, n.ctr)
			}
		})
	}
}

// TestNoLookupsWithoutWorkloadKeys: a config without workload keys never
// calls the process or container getters (they cost /proc scans and API calls).
func TestNoLookupsWithoutWorkloadKeys(t *testing.T) {
	st := compile(parseConfig(t, `
sts: { mode: local }
roles: [{name: app, session_name: "u-{{.UID}}"}]
clients: [{name: a, match: {uids: [7]}, roles: [app]}]
`))
	var n counting
	c := n.caller(&Process{Unit: "x.service"}, &Container{Name: "x"}, 7)
	cl, err := st.identify(c)
	if err != nil {
		t.Fatal(err)
	}
	st.session(cl, st.roles["app"], c)
	if n.proc != 0 || n.ctr != 0 {
		t.Fatalf("process getter called %d times, container %d: want none", n.proc, n.ctr)
	}
}

// TestSessionPerUnit: two callers of one client differing only in .Unit get
// different sessions; the same unit shares one.
func TestSessionPerUnit(t *testing.T) {
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	a, err := New(Options{Source: src, Clock: clk, Logger: zaptest.NewLogger(t), DisableWarm: true, Rand: func() float64 { return 0.5 }}, parseConfig(t, workloadYAML))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var n counting
	eu := n.caller(&Process{Unit: "billing-eu.service"}, nil, 0)
	us := n.caller(&Process{Unit: "billing-us.service"}, nil, 0)
	c1, err := a.Credentials(context.Background(), eu, "billing")
	if err != nil {
		t.Fatal(err)
	}
	c2 := mustCreds(t, a, us, "billing")
	c3 := mustCreds(t, a, n.caller(&Process{Unit: "billing-eu.service"}, nil, 0), "billing")
	if c1 == c2 {
		t.Fatal("callers in different units share a session")
	}
	if c1 != c3 {
		t.Fatal("callers in one unit got different sessions")
	}
	if want := "billing-eu.service"; src.reqs[0].SessionName != want {
		t.Errorf("session name %q, want %q", src.reqs[0].SessionName, want)
	}
	// A role whose name does not read the unit keeps one session per client.
	f1 := mustCreds(t, a, eu, "fixed")
	f2 := mustCreds(t, a, us, "fixed")
	if f1 != f2 {
		t.Error("a constant session name gave two sessions")
	}
	ctr := mustCreds(t, a, n.caller(nil, &Container{Name: "web-1", Image: "example/web:1", Labels: map[string]string{"credsidecar.role": "web"}}, 0), "web")
	if ctr == nil || src.reqs[len(src.reqs)-1].SessionName != "ctr-web-1" {
		t.Errorf("container session name %q, want ctr-web-1", src.reqs[len(src.reqs)-1].SessionName)
	}
}

// TestExplainWorkload: explain names the failing workload condition and
// agrees with the agent.
func TestExplainWorkload(t *testing.T) {
	cfg := parseConfig(t, workloadYAML)
	var n counting
	ex, err := ExplainTrust(cfg, n.caller(&Process{PID: 42, Unit: "other.service"}, nil, 5), "")
	if err != nil {
		t.Fatal(err)
	}
	if ex.Client != "" || ex.Clients[0].Failed != "systemd_unit" || ex.Clients[0].Why == "" {
		t.Fatalf("explanation %+v", ex.Clients[0])
	}
	ex, err = ExplainTrust(cfg, n.caller(&Process{PID: 42, Unit: "billing.service"}, nil, 5), "")
	if err != nil || ex.Client != "unit" {
		t.Fatalf("explanation %+v, %v", ex, err)
	}
}

// TestTagTemplateUnit: a role tag reading .Unit makes sessions per unit and
// carries the unit.
func TestTagTemplateUnit(t *testing.T) {
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	a, err := New(Options{Source: src, Clock: clk, Logger: zaptest.NewLogger(t), DisableWarm: true, Rand: func() float64 { return 0.5 }}, parseConfig(t, `
sts: { mode: local }
roles:
  - {name: billing, tags: {unit: "{{.Unit}}"}}
clients:
  - {name: unit, match: {systemd_unit: "billing*.service"}, roles: [billing]}
`))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var n counting
	c1 := mustCreds(t, a, n.caller(&Process{Unit: "billing-eu.service"}, nil, 0), "billing")
	c2 := mustCreds(t, a, n.caller(&Process{Unit: "billing-us.service"}, nil, 0), "billing")
	if c1 == c2 {
		t.Fatal("callers whose tags differ by .Unit share a session")
	}
	got := map[string]bool{}
	for _, r := range src.reqs {
		for _, tag := range r.Tags {
			if tag.Key == "unit" {
				got[tag.Value] = true
			}
		}
	}
	if !got["billing-eu.service"] || !got["billing-us.service"] {
		t.Fatalf("unit tags sent: %v", got)
	}
}
