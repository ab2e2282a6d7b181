package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/iampolicy"
	"github.com/credsidecar/credsidecar/sts/localsts"
)

const simulateUsage = `Usage: credsidecar simulate --role NAME --action ACTION --resource ARN [--session-policy FILE] [--config FILE]

Evaluates what a session of the role may do: the role's permission_policies
intersected with its session policies (the role's session_policy, or the JSON
policy in --session-policy instead, plus its managed policy_arns). Prints the
decision (allowed, implicitDeny or explicitDeny) and the statement that
decided it. Exit status 0 when allowed, 1 when denied.

`

// simulateFlags are simulate's own flags.
type simulateFlags struct {
	role, action, resource, sessionPolicy string
}

// errDenied is simulate's "denied" outcome: exit status 1, the decision is
// already printed.
type errDenied struct{ decision iampolicy.Decision }

func (e *errDenied) Error() string { return "simulate: request denied (" + e.decision.String() + ")" }

func runSimulate(args []string, stdout, stderr io.Writer) error {
	var c common
	var f simulateFlags
	fs := newFlagSet("simulate", stderr, simulateUsage)
	c.register(fs)
	fs.StringVar(&f.role, "role", "", "role name (as in the config's roles)")
	fs.StringVar(&f.action, "action", "", "action, e.g. s3:GetObject")
	fs.StringVar(&f.resource, "resource", "", "resource ARN, e.g. arn:aws:s3:::bucket/key")
	fs.StringVar(&f.sessionPolicy, "session-policy", "", "JSON session policy file (replaces the role's session_policy)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var missing []string
	for _, m := range []struct{ name, v string }{{"--role", f.role}, {"--action", f.action}, {"--resource", f.resource}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return &usageError{"simulate: " + strings.Join(missing, ", ") + " required"}
	}
	cfg, err := config.Load(c.configPath)
	if err != nil {
		return err
	}
	return simulate(cfg, f, stdout)
}

func simulate(cfg *config.Config, f simulateFlags, stdout io.Writer) error {
	acct, err := localsts.NewAccount(cfg, localsts.RandomUserKeys)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	res, err := simulateRole(cfg, acct, f)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return printSimulation(res, f, stdout)
}

// simulateRole is simulate's decision: the role's sessions, with its own
// session policies (or the --session-policy file's), doing f.action on
// f.resource.
func simulateRole(cfg *config.Config, acct *localsts.Account, f simulateFlags) (*localsts.SimulateResult, error) {
	rc, ok := cfg.RoleByName(f.role)
	if !ok {
		return nil, fmt.Errorf("no role %q in the config", f.role)
	}
	in := localsts.SimulateInput{
		RoleARN: rc.ARN, PolicyARNs: rc.PolicyARNs, SessionTags: rc.Tags,
		Action: f.action, Resource: f.resource,
	}
	if rc.SessionPolicy != nil {
		in.SessionPolicy = rc.SessionPolicy.JSON
	}
	if f.sessionPolicy != "" {
		b, err := os.ReadFile(f.sessionPolicy)
		if err != nil {
			return nil, fmt.Errorf("read --session-policy: %w", err)
		}
		in.SessionPolicy = string(b)
	}
	return acct.Simulate(in)
}

// printSimulation prints simulate's verdict; a denial is an *errDenied.
func printSimulation(res *localsts.SimulateResult, f simulateFlags, stdout io.Writer) error {
	word := res.Decision.String()
	if res.Decision == iampolicy.Allow {
		word = "allowed"
	}
	fmt.Fprintf(stdout, "%s: %s on %s for role %s\n", word, f.action, f.resource, f.role)
	switch res.Decision {
	case iampolicy.Allow:
		for _, st := range res.Steps {
			fmt.Fprintf(stdout, "  allowed by %s: %s\n", st.Set, describeStatement(st))
		}
		return nil
	case iampolicy.ExplicitDeny:
		fmt.Fprintf(stdout, "  denied by %s: %s\n", res.Decider.Set, describeStatement(res.Decider))
	default:
		fmt.Fprintf(stdout, "  no statement of the %s allows it\n", res.Decider.Set)
	}
	return &errDenied{res.Decision}
}

// describeStatement names the policy and statement of a step.
func describeStatement(st localsts.SimulateStep) string {
	s := st.Result.Statement
	if s == nil {
		return "-"
	}
	out := fmt.Sprintf("%s Statement[%d]", st.Policy, s.Index)
	if s.Sid != "" {
		out += fmt.Sprintf(" (Sid %q)", s.Sid)
	}
	return out
}

// isDenied reports whether err is simulate's denial.
func isDenied(err error) bool {
	var d *errDenied
	return errors.As(err, &d)
}
