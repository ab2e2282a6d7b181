package localsts

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/credsidecar/credsidecar/iampolicy"
)

// SimulateInput asks what a role session may do.
type SimulateInput struct {
	// RoleARN is the role whose permission policies apply.
	RoleARN string
	// SessionPolicy is the inline session policy JSON ("" for none).
	SessionPolicy string
	// PolicyARNs are managed session policies (the role's policy_arns).
	PolicyARNs []string
	// SessionTags are the session's tags (aws:PrincipalTag/*).
	SessionTags map[string]string
	// Action and Resource are what is being done.
	Action, Resource string
	// Time is aws:CurrentTime; zero means now.
	Time time.Time
}

// SimulateStep is one policy set's verdict in a simulation.
type SimulateStep struct {
	// Set is "permission policies" or "session policies".
	Set string
	// Result is the set's evaluation.
	Result iampolicy.Result
	// Policy names the deciding policy ("" for implicitDeny): e.g.
	// "permission_policies[0]", "session_policy" or a managed policy ARN.
	Policy string
}

// SimulateResult is the decision for a role session: the intersection of
// the role's permission policies with its session policies.
type SimulateResult struct {
	Decision iampolicy.Decision
	// Decider is the step that decided: the explicit deny, the set that
	// did not allow, or (allow) the permission policies' allowing step.
	Decider SimulateStep
	// Steps are every evaluated set, permission policies first.
	Steps []SimulateStep
}

// Simulate evaluates what a session of the role may do, as IAM would for a
// request the session signs: an explicit deny in any set wins, and
// otherwise both the permission policies and (when there are any) the
// session policies must allow.
func (a *Account) Simulate(in SimulateInput) (*SimulateResult, error) {
	role, ok := a.Role(in.RoleARN)
	if !ok {
		return nil, fmt.Errorf("role %s is not in the emulated account", in.RoleARN)
	}
	session, serr := parseSessionPolicies(a, in.SessionPolicy, in.PolicyARNs)
	if serr != nil {
		return nil, fmt.Errorf("session policy: %s: %s", serr.Code, serr.Message)
	}
	now := in.Time
	if now.IsZero() {
		now = time.Now()
	}
	ctx := baseContext(now, netip.Addr{}, true)
	ctx["aws:PrincipalArn"] = []string{role.ARN}
	ctx["aws:PrincipalAccount"] = []string{a.ID}
	ctx["aws:PrincipalType"] = []string{"AssumedRole"}
	for k, v := range role.Tags {
		ctx["aws:PrincipalTag/"+k] = []string{v}
	}
	for k, v := range in.SessionTags {
		ctx["aws:PrincipalTag/"+k] = []string{v}
	}
	req := iampolicy.Request{Action: in.Action, Resource: in.Resource, Context: ctx}

	perm := iampolicy.Evaluate(role.Permissions, req)
	steps := []SimulateStep{{Set: "permission policies", Result: perm, Policy: policyName("permission_policies", perm.Policy, nil)}}
	if len(session) > 0 {
		names := make([]string, 0, len(session))
		if in.SessionPolicy != "" {
			names = append(names, "session_policy")
		}
		names = append(names, in.PolicyARNs...)
		sr := iampolicy.Evaluate(session, req)
		steps = append(steps, SimulateStep{Set: "session policies", Result: sr, Policy: policyName("", sr.Policy, names)})
	}
	res := &SimulateResult{Decision: iampolicy.Allow, Steps: steps, Decider: steps[0]}
	for _, st := range steps {
		if st.Result.Decision == iampolicy.ExplicitDeny {
			res.Decision, res.Decider = iampolicy.ExplicitDeny, st
			return res, nil
		}
	}
	for _, st := range steps {
		if st.Result.Decision != iampolicy.Allow {
			res.Decision, res.Decider = iampolicy.ImplicitDeny, st
			return res, nil
		}
	}
	return res, nil
}

func policyName(prefix string, idx int, names []string) string {
	if idx < 0 {
		return ""
	}
	if names != nil {
		if idx < len(names) {
			return names[idx]
		}
		return fmt.Sprintf("session policy %d", idx)
	}
	return fmt.Sprintf("%s[%d]", prefix, idx)
}
