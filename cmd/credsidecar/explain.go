package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/iampolicy"
	"github.com/credsidecar/credsidecar/jwtauth"
	"github.com/credsidecar/credsidecar/sts/localsts"
)

const explainUsage = `Usage: credsidecar explain [--role NAME] [--token T | --token-file F | --jwt-file F] [--addr IP] [--uid N|none]
                         [--pid PID] [--container NAME|ID]
                         [--action A --resource ARN] [--json] [--config FILE]

Why a caller would, or would not, get credentials — from the config alone, no
running sidecar needed. For the caller described by the flags it prints:
  - each client of the trust config, in file order, up to the one it matches,
    with the condition (token, jwt, source_cidrs, uids, systemd_unit, cgroup,
    exe, container, …) that failed for the others;
  - whether that client may have the role (--role, default: its default role);
  - in local mode, the embedded STS's decision of each AssumeRole the sidecar
    would make for it (its own user, then each hop of a via chain), with the
    statement that decided and, for a refusal, the condition that failed;
  - with --action and --resource, the role session's permission decision, as
    simulate gives it (it does not change the exit status).
Exit status 0 when the caller would get credentials, 1 when not.

--addr defaults to 127.0.0.1 and --uid to your own uid ("none": unknown, as
for a caller whose socket owner cannot be found). The token is never printed.
--jwt-file is a bearer JWT (e.g. a pod's projected service-account token),
verified as the sidecar would: against the identity_providers' keys (a
jwks_url or TokenReview is asked now).
--pid describes a running host process as the sidecar would attest it (its
unit, cgroup, executable and hash; --uid defaults to its owner's), and
--container a Docker container as the Engine API at docker.host describes it
(--addr defaults to its address); both need the privileges serve has.

`

// explainFlags are explain's own flags.
type explainFlags struct {
	role, token, tokenFile, addr, uid string
	jwtFile                           string
	pid                               int
	container                         string
	// What --pid and --container found (explain_workload.go).
	proc             *agent.Process
	procErr          error
	ctr              *agent.Container
	action, resource string
	json             bool
}

// errNotTrusted is explain's "would not get credentials" outcome: exit
// status 1, the reasons are already printed.
type errNotTrusted struct{ role string }

func (e *errNotTrusted) Error() string {
	if e.role == "" {
		return "explain: the caller would not get credentials"
	}
	return fmt.Sprintf("explain: the caller would not get credentials for role %q", e.role)
}

func runExplain(args []string, stdout, stderr io.Writer) error {
	var c common
	var f explainFlags
	fs := newFlagSet("explain", stderr, explainUsage)
	c.register(fs)
	fs.StringVar(&f.role, "role", "", "role name (default: the matched client's default role)")
	fs.StringVar(&f.token, "token", "", "bearer token the caller presents")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token the caller presents")
	fs.StringVar(&f.jwtFile, "jwt-file", "", "file holding the bearer JWT the caller presents")
	fs.StringVar(&f.addr, "addr", "127.0.0.1", "the caller's source IP address")
	fs.StringVar(&f.uid, "uid", "", `uid owning the caller's socket (default: yours; "none": unknown)`)
	fs.StringVar(&f.action, "action", "", "with --resource: also simulate this action, e.g. s3:GetObject")
	fs.StringVar(&f.resource, "resource", "", "with --action: the resource ARN to simulate it on")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.IntVar(&f.pid, "pid", 0, "describe the host process with this pid (its unit, cgroup, executable)")
	fs.StringVar(&f.container, "container", "", "describe the Docker container with this name or id")
	if err := parse(fs, args); err != nil {
		return err
	}
	if n := btoi(f.token != "") + btoi(f.tokenFile != "") + btoi(f.jwtFile != ""); n > 1 {
		return &usageError{"explain: give one of --token, --token-file, --jwt-file"}
	}
	if (f.action == "") != (f.resource == "") {
		return &usageError{"explain: --action and --resource go together"}
	}
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return err
	}
	if err := explainWorkload(cfg, &f); err != nil {
		return err
	}
	caller, err := explainCaller(f)
	if err != nil {
		return err
	}
	f.attach(caller, stderr)
	if caller.HasToken && cfg.UsesJWT() {
		// Verified as the sidecar would, with the same providers.
		auth := jwtauth.New(jwtauth.Options{})
		defer auth.Close()
		if err := auth.Apply(cfg); err != nil {
			return fmt.Errorf("explain: identity providers: %w", err)
		}
		tok := caller.Token
		caller.JWT = func() (*agent.JWT, error) {
			id, err := auth.Verify(context.Background(), tok, func() string { return "explain" })
			if err != nil {
				return nil, err
			}
			return &agent.JWT{Provider: id.Provider, Subject: id.Subject, Claims: id.All}, nil
		}
	}
	rep, err := explain(cfg, caller, f)
	if err != nil {
		return err
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("explain: write JSON: %w", err)
		}
	} else {
		rep.print(stdout)
	}
	if !rep.Credentials {
		return &errNotTrusted{rep.Role}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// explainCaller builds the agent.Caller the flags describe.
func explainCaller(f explainFlags) (*agent.Caller, error) {
	c := &agent.Caller{}
	switch {
	case f.tokenFile != "" || f.jwtFile != "":
		path := f.tokenFile
		if path == "" {
			path = f.jwtFile
		}
		tok, err := readToken(path)
		if err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		c.Token, c.HasToken = tok, true
	case f.token != "":
		c.Token, c.HasToken = f.token, true
	}
	a, err := netip.ParseAddr(f.addr)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("explain: --addr %q is not an IP address", f.addr)}
	}
	c.Addr = a.Unmap()
	switch f.uid {
	case "none":
		c.UID = func() (uint32, error) { return 0, errors.New("the caller's uid is not known") }
	case "":
		uid := uint32(os.Getuid())
		c.UID = func() (uint32, error) { return uid, nil }
	default:
		n, err := strconv.ParseUint(f.uid, 10, 32)
		if err != nil {
			return nil, &usageError{fmt.Sprintf("explain: --uid %q is not a uid", f.uid)}
		}
		uid := uint32(n)
		c.UID = func() (uint32, error) { return uid, nil }
	}
	return c, nil
}

// explainReport is what explain prints, and its --json form.
type explainReport struct {
	Caller struct {
		Token bool    `json:"token"`
		Addr  string  `json:"addr"`
		UID   *uint32 `json:"uid"`
	} `json:"caller"`
	Clients     []clientReport `json:"clients"`
	Client      string         `json:"client,omitempty"`
	Role        string         `json:"role,omitempty"`
	RoleAllowed bool           `json:"role_allowed"`
	// Refusal is the sidecar's own refusal, before any STS call.
	Refusal string `json:"refusal,omitempty"`
	STSMode string `json:"sts_mode"`
	// Trust are the AssumeRole decisions of the embedded STS (local mode).
	Trust []hopReport `json:"trust,omitempty"`
	// TrustNote says why the trust policy was not (fully) evaluated.
	TrustNote  string            `json:"trust_note,omitempty"`
	Permission *permissionReport `json:"permission,omitempty"`
	// Credentials is the verdict: would the caller get credentials?
	Credentials bool `json:"credentials"`
}

type clientReport struct {
	Client  string `json:"client"`
	Line    int    `json:"line"`
	Matched bool   `json:"matched"`
	Failed  string `json:"failed,omitempty"`
	Why     string `json:"why,omitempty"`
}

type hopReport struct {
	RoleARN     string   `json:"role_arn"`
	Caller      string   `json:"caller"`
	SessionName string   `json:"session_name"`
	Actions     []string `json:"actions"`
	Allowed     bool     `json:"allowed"`
	// Action is the refused action; Error what the caller's SDK would see.
	Action string       `json:"refused_action,omitempty"`
	Error  string       `json:"error,omitempty"`
	Reason string       `json:"reason,omitempty"`
	Steps  []stepReport `json:"steps"`
}

type stepReport struct {
	Set       string `json:"set"`
	Decision  string `json:"decision"`
	Statement string `json:"statement,omitempty"`
	// Statements are every statement of the set and why it did or did not
	// apply.
	Statements []traceReport `json:"statements"`
}

type traceReport struct {
	Statement string `json:"statement"`
	Effect    string `json:"effect"`
	Applies   bool   `json:"applies"`
	Why       string `json:"why"`
}

type permissionReport struct {
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	Decision  string `json:"decision"`
	Set       string `json:"set,omitempty"`
	Statement string `json:"statement,omitempty"`
	Error     string `json:"error,omitempty"`
}

// explain builds the report: the agent's trust decision, then the embedded
// STS's, then the optional permission simulation.
func explain(cfg *config.Config, c *agent.Caller, f explainFlags) (*explainReport, error) {
	rep := &explainReport{STSMode: cfg.STS.Mode}
	rep.Caller.Token = c.HasToken
	rep.Caller.Addr = c.Addr.String()
	if uid, err := c.UID(); err == nil {
		rep.Caller.UID = &uid
	}
	ex, err := agent.ExplainTrust(cfg, c, f.role)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	for _, chk := range ex.Clients {
		rep.Clients = append(rep.Clients, clientReport(chk))
	}
	rep.Client, rep.Role, rep.RoleAllowed = ex.Client, ex.Role, ex.RoleAllowed
	if rep.Role == "" {
		rep.Role = f.role
	}
	if ex.Refusal != nil {
		rep.Refusal = ex.Refusal.Error()
		return rep, nil
	}
	if cfg.STS.Mode != config.ModeLocal {
		// What AWS decides is out of sight: the verdict is the sidecar's.
		rep.TrustNote = "sts.mode is " + cfg.STS.Mode + ": AWS evaluates the role's trust policy, which explain cannot see"
		rep.Credentials = true
		if f.action != "" {
			rep.Permission = &permissionReport{Action: f.action, Resource: f.resource,
				Error: "sts.mode is " + cfg.STS.Mode + ": AWS evaluates the role's permissions"}
		}
		return rep, nil
	}
	acct, err := localsts.NewAccount(cfg, localsts.RandomUserKeys)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	issuer, err := localsts.NewIssuer(localsts.RandomKey(), nil, acct)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	decisions, err := localsts.NewSource(issuer).Explain(ex.Chain)
	switch {
	case errors.Is(err, localsts.ErrWebIdentityNotExplained):
		rep.TrustNote = err.Error()
	case err != nil:
		return nil, fmt.Errorf("explain: %w", err)
	}
	// A hop explain cannot evaluate (web identity) leaves the verdict to
	// the hops it did evaluate, as in aws mode.
	callerARN := acct.Caller.ARN
	allowed := true
	for i, d := range decisions {
		req := ex.Chain[i]
		h := hopReport{RoleARN: req.RoleARN, Caller: callerARN, SessionName: req.SessionName, Actions: d.Actions, Allowed: d.Err == nil, Reason: d.Reason, Action: d.Action}
		if d.Err != nil {
			h.Error = d.Err.Error()
			allowed = false
		} else {
			callerARN = d.Claims().AssumedRole().ARN
		}
		for _, st := range d.Steps {
			sr := stepReport{Set: st.Set, Decision: st.Result.Decision.String()}
			if st.Result.Statement != nil {
				sr.Statement = st.Result.Statement.Name()
			}
			for _, tr := range st.Traces {
				sr.Statements = append(sr.Statements, traceReport{Statement: tr.Statement.Name(), Effect: string(tr.Statement.Effect), Applies: tr.Matched, Why: tr.Why()})
			}
			h.Steps = append(h.Steps, sr)
		}
		rep.Trust = append(rep.Trust, h)
	}
	rep.Credentials = allowed
	if f.action != "" {
		pr := &permissionReport{Action: f.action, Resource: f.resource}
		res, err := simulateRole(cfg, acct, simulateFlags{role: rep.Role, action: f.action, resource: f.resource})
		if err != nil {
			pr.Error = err.Error()
		} else {
			pr.Decision, pr.Set = res.Decision.String(), res.Decider.Set
			if res.Decision == iampolicy.Allow {
				pr.Decision = "allowed"
			}
			pr.Statement = describeStatement(res.Decider)
		}
		rep.Permission = pr
	}
	return rep, nil
}

// print writes the report for humans.
func (r *explainReport) print(w io.Writer) {
	uid := "unknown"
	if r.Caller.UID != nil {
		uid = strconv.FormatUint(uint64(*r.Caller.UID), 10)
	}
	token := "none"
	if r.Caller.Token {
		token = "given (not shown)"
	}
	fmt.Fprintf(w, "caller: address %s, uid %s, token %s\n", r.Caller.Addr, uid, token)
	fmt.Fprintln(w, "clients, in file order:")
	if len(r.Clients) == 0 {
		fmt.Fprintln(w, "  (the config has no clients)")
	}
	for _, c := range r.Clients {
		if c.Matched {
			fmt.Fprintf(w, "  %s (line %d): matches\n", c.Client, c.Line)
			continue
		}
		fmt.Fprintf(w, "  %s (line %d): no: %s: %s\n", c.Client, c.Line, c.Failed, c.Why)
	}
	switch {
	case r.Client == "":
		fmt.Fprintf(w, "refused by the sidecar: %s\n", r.Refusal)
	case !r.RoleAllowed:
		fmt.Fprintf(w, "role %s: refused by the sidecar: client %s may not have it (%s)\n", r.Role, r.Client, r.Refusal)
	default:
		fmt.Fprintf(w, "role %s: client %s may have it\n", r.Role, r.Client)
	}
	for _, h := range r.Trust {
		verdict := "allowed"
		if !h.Allowed {
			verdict = "refused"
		}
		fmt.Fprintf(w, "AssumeRole %s as %s (session %q): %s\n", h.RoleARN, h.Caller, h.SessionName, verdict)
		if !h.Allowed {
			fmt.Fprintf(w, "  the STS answers: %s\n", h.Error)
			fmt.Fprintf(w, "  because: %s\n", h.Reason)
		}
		for _, st := range h.Steps {
			line := "  " + st.Set + ": " + st.Decision
			if st.Statement != "" {
				line += " by " + st.Statement
			}
			if h.Allowed && st.Decision != "allow" {
				// Allowed all the same: the trust policy names the caller
				// (or its session) directly, which suffices in the account.
				line += " (not needed: the trust policy names the caller directly)"
			}
			fmt.Fprintln(w, line)
			if h.Allowed {
				continue
			}
			for _, tr := range st.Statements {
				fmt.Fprintf(w, "    %s %s: %s\n", tr.Statement, tr.Effect, tr.Why)
			}
		}
	}
	if r.TrustNote != "" {
		fmt.Fprintf(w, "trust policy: %s\n", r.TrustNote)
	}
	if p := r.Permission; p != nil {
		if p.Error != "" {
			fmt.Fprintf(w, "permission %s on %s: cannot simulate: %s\n", p.Action, p.Resource, p.Error)
		} else if p.Decision == iampolicy.ImplicitDeny.String() {
			fmt.Fprintf(w, "permission %s on %s: %s (no statement of the %s allows it)\n", p.Action, p.Resource, p.Decision, p.Set)
		} else {
			fmt.Fprintf(w, "permission %s on %s: %s (%s: %s)\n", p.Action, p.Resource, p.Decision, p.Set, p.Statement)
		}
	}
	if r.Credentials {
		fmt.Fprintf(w, "result: the caller would get credentials for role %s\n", r.Role)
	} else {
		fmt.Fprintf(w, "result: the caller would not get credentials%s\n", roleSuffix(r.Role))
	}
}

func roleSuffix(role string) string {
	if role == "" {
		return ""
	}
	return " for role " + strings.TrimSpace(role)
}
