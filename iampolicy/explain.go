package iampolicy

import (
	"fmt"
	"strconv"
	"strings"
)

// Element names a part of a statement that a request failed to match.
type Element string

// The elements Explain reports, in the order they are tested.
const (
	ElementNone      Element = ""
	ElementAction    Element = "Action"
	ElementResource  Element = "Resource"
	ElementPrincipal Element = "Principal"
	ElementCondition Element = "Condition"
)

// Trace is how one statement fared against a request.
type Trace struct {
	// Policy is the statement's policy index in the slice given to Explain.
	Policy int
	// Statement is the statement traced.
	Statement *Statement
	// Matched is true when the statement applies to the request.
	Matched bool
	// PrincipalMatch is how the statement's Principal named the caller
	// (PrincipalNone when it has none or did not match).
	PrincipalMatch PrincipalMatch
	// Failed is the first element that did not match (ElementNone when
	// Matched); an Action failure covers NotAction, a Resource one
	// NotResource.
	Failed Element
	// Condition is the first condition that was false when Failed is
	// ElementCondition, nil otherwise.
	Condition *Condition
	// Values are the request's values of Condition's key (nil: absent).
	Values []string
}

// Explain evaluates like Evaluate and also traces every statement of every
// policy, in order, so a caller can say why a request was refused. It is
// slower than Evaluate and meant for diagnostics, not the request path.
func Explain(policies []*Policy, r Request) (Result, []Trace) {
	ctx := newEvalContext(r.Context)
	action := strings.ToLower(r.Action)
	var traces []Trace
	for i, p := range policies {
		if p == nil {
			continue
		}
		for j := range p.Statements {
			s := &p.Statements[j]
			tr := Trace{Policy: i, Statement: s}
			switch {
			case s.matchAction(action) == (s.NotAction != nil):
				tr.Failed = ElementAction
			case s.resources != nil && s.matchResource(r.Resource, ctx) == (s.NotResource != nil):
				tr.Failed = ElementResource
			default:
				pm, ok := PrincipalNone, true
				if s.Principal != nil {
					pm = s.Principal.match(r.Principal)
					ok = pm != PrincipalNone
				}
				if !ok {
					tr.Failed = ElementPrincipal
					break
				}
				tr.PrincipalMatch = pm
				for k := range s.Conditions {
					if !s.Conditions[k].eval(ctx) {
						tr.Failed, tr.Condition = ElementCondition, &s.Conditions[k]
						tr.Values = ctx[s.Conditions[k].key]
						break
					}
				}
				tr.Matched = tr.Failed == ElementNone
			}
			traces = append(traces, tr)
		}
	}
	return Evaluate(policies, r), traces
}

// String renders the condition as it is written, e.g.
// `StringEquals sts:ExternalId ["a","b"]`.
func (c *Condition) String() string {
	vals := make([]string, len(c.Values))
	for i, v := range c.Values {
		vals[i] = strconv.Quote(clip(v))
	}
	return fmt.Sprintf("%s %s [%s]", c.Operator, c.Key, strings.Join(vals, ","))
}

// Name is the statement's position and, when it has one, its Sid, e.g.
// `Statement[1] (Sid "DenyOthers")`.
func (s *Statement) Name() string {
	out := fmt.Sprintf("Statement[%d]", s.Index)
	if s.Sid != "" {
		out += fmt.Sprintf(" (Sid %q)", s.Sid)
	}
	return out
}

// Why says in a few words why the traced statement did not apply, or that
// it did: e.g. `condition StringEquals sts:ExternalId ["x"] is false (the
// request has ["y"])`. It quotes request values: it is for the operator's
// eyes, not for logs.
func (t Trace) Why() string {
	switch t.Failed {
	case ElementNone:
		if t.Matched {
			return "applies"
		}
	case ElementAction:
		return "the action is not among its actions"
	case ElementResource:
		return "the resource is not among its resources"
	case ElementPrincipal:
		return "its Principal does not name the caller"
	case ElementCondition:
		have := "the key is absent from the request"
		if len(t.Values) > 0 {
			vals := make([]string, len(t.Values))
			for i, v := range t.Values {
				vals[i] = strconv.Quote(clip(v))
			}
			have = "the request has [" + strings.Join(vals, ",") + "]"
		}
		return "condition " + t.Condition.String() + " is false (" + have + ")"
	}
	return "does not apply"
}
