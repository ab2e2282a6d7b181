package iampolicy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// family groups condition operators that compare values the same way.
type family int

const (
	famString family = iota
	famStringIgnoreCase
	famStringLike
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famARN
	famNull
)

// comparison is the relation a numeric or date operator tests.
type comparison int

const (
	cmpEq comparison = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

// opSpec describes a base operator (without prefix or IfExists suffix).
type opSpec struct {
	fam family
	cmp comparison
	// negated operators (StringNotEquals, NotIpAddress, ...) hold when the
	// request value matches none of the policy values, and when the key is
	// absent.
	negated bool
}

// setMode is the ForAllValues:/ForAnyValue: prefix of an operator.
type setMode int

const (
	setNone setMode = iota
	setAll
	setAny
)

// baseOperator looks up an operator name without prefix or suffix. It is a
// switch rather than a map so the package holds no mutable state.
func baseOperator(name string) (opSpec, bool) {
	switch name {
	case "StringEquals":
		return opSpec{fam: famString}, true
	case "StringNotEquals":
		return opSpec{fam: famString, negated: true}, true
	case "StringEqualsIgnoreCase":
		return opSpec{fam: famStringIgnoreCase}, true
	case "StringNotEqualsIgnoreCase":
		return opSpec{fam: famStringIgnoreCase, negated: true}, true
	case "StringLike":
		return opSpec{fam: famStringLike}, true
	case "StringNotLike":
		return opSpec{fam: famStringLike, negated: true}, true
	case "NumericEquals":
		return opSpec{fam: famNumeric, cmp: cmpEq}, true
	case "NumericNotEquals":
		return opSpec{fam: famNumeric, cmp: cmpEq, negated: true}, true
	case "NumericLessThan":
		return opSpec{fam: famNumeric, cmp: cmpLt}, true
	case "NumericLessThanEquals":
		return opSpec{fam: famNumeric, cmp: cmpLe}, true
	case "NumericGreaterThan":
		return opSpec{fam: famNumeric, cmp: cmpGt}, true
	case "NumericGreaterThanEquals":
		return opSpec{fam: famNumeric, cmp: cmpGe}, true
	case "DateEquals":
		return opSpec{fam: famDate, cmp: cmpEq}, true
	case "DateNotEquals":
		return opSpec{fam: famDate, cmp: cmpEq, negated: true}, true
	case "DateLessThan":
		return opSpec{fam: famDate, cmp: cmpLt}, true
	case "DateLessThanEquals":
		return opSpec{fam: famDate, cmp: cmpLe}, true
	case "DateGreaterThan":
		return opSpec{fam: famDate, cmp: cmpGt}, true
	case "DateGreaterThanEquals":
		return opSpec{fam: famDate, cmp: cmpGe}, true
	case "Bool":
		return opSpec{fam: famBool}, true
	case "BinaryEquals":
		return opSpec{fam: famBinary}, true
	case "IpAddress":
		return opSpec{fam: famIP}, true
	case "NotIpAddress":
		return opSpec{fam: famIP, negated: true}, true
	// ArnEquals behaves exactly like ArnLike in IAM: both take wildcards.
	case "ArnEquals", "ArnLike":
		return opSpec{fam: famARN}, true
	case "ArnNotEquals", "ArnNotLike":
		return opSpec{fam: famARN, negated: true}, true
	case "Null":
		return opSpec{fam: famNull}, true
	}
	return opSpec{}, false
}

// lookupOperator parses a full operator name such as
// "ForAllValues:StringLikeIfExists".
func lookupOperator(name string) (spec opSpec, set setMode, ifExists bool, err error) {
	base := name
	if rest, ok := strings.CutPrefix(base, "ForAllValues:"); ok {
		base, set = rest, setAll
	} else if rest, ok := strings.CutPrefix(base, "ForAnyValue:"); ok {
		base, set = rest, setAny
	}
	if rest, ok := strings.CutSuffix(base, "IfExists"); ok {
		base, ifExists = rest, true
	}
	spec, ok := baseOperator(base)
	if !ok {
		return spec, set, ifExists, fmt.Errorf("unknown condition operator %q", clip(name))
	}
	if spec.fam == famNull && ifExists {
		// Null already tests for presence; IfExists would make it vacuous.
		return spec, set, ifExists, fmt.Errorf("operator %q: Null does not take the IfExists suffix", clip(name))
	}
	return spec, set, ifExists, nil
}

// condValue is a policy value compiled for its operator family.
type condValue struct {
	tmpl   template // string, string-like and ARN families
	num    float64
	time   time.Time
	b      bool // Bool; for Null, true means "the key is absent"
	bytes  []byte
	prefix netip.Prefix
}

// compileCondValue checks a policy value against its operator family and
// pre-computes what comparisons need, so that evaluation never re-parses
// the policy and a bad number, date or CIDR fails at parse time.
func compileCondValue(f family, s string, vars bool) (condValue, error) {
	cv := condValue{}
	switch f {
	case famString, famStringIgnoreCase, famStringLike, famARN:
		// Only string and ARN operators substitute policy variables.
		cv.tmpl = compileTemplate(s, vars)
	case famNumeric:
		n, err := parseNumber(s)
		if err != nil {
			return cv, err
		}
		cv.num = n
	case famDate:
		t, err := parseDate(s)
		if err != nil {
			return cv, err
		}
		cv.time = t
	case famBool, famNull:
		b, err := parseBool(s)
		if err != nil {
			return cv, err
		}
		cv.b = b
	case famBinary:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return cv, fmt.Errorf("invalid base64 value %q", clip(s))
		}
		cv.bytes = b
	case famIP:
		pfx, err := parseCIDR(s)
		if err != nil {
			return cv, err
		}
		cv.prefix = pfx
	}
	return cv, nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", clip(s))
		}
		return netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q", clip(s))
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmappedBits converts the prefix length of an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) to its IPv4 length, so it matches IPv4 clients.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// evalContext is a request's condition context with lower-cased keys, since
// condition keys are case-insensitive.
type evalContext map[string][]string

func newEvalContext(m map[string][]string) evalContext {
	ctx := make(evalContext, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		// Keys that differ only in case are one key: merge their values.
		ctx[lk] = append(ctx[lk], v...)
	}
	return ctx
}

// variable resolves a policy variable. A key that is absent or has several
// values (policy variables are single-valued) falls back to the variable's
// default, if it has one.
func (ctx evalContext) variable(p tpart) (string, bool) {
	if v := ctx[p.text]; len(v) == 1 {
		return v[0], true
	}
	if p.hasDef {
		return p.def, true
	}
	return "", false
}

// outcome is the result of comparing one request value with one policy
// value.
type outcome int

const (
	// noMatch: the values were compared and differ, or the policy value
	// holds a policy variable with no value (which equals nothing).
	noMatch outcome = iota
	// match: the values were compared and the positive operator holds.
	match
	// invalid: the request value cannot be compared (a number, date, IP
	// address or ARN operator given something that is not one). It counts
	// against the request for positive and negated operators alike.
	invalid
)

// eval reports whether the condition holds for the request context.
//
// IAM User Guide, "IAM JSON policy elements: Condition operators"
// (reference_policies_elements_condition_operators.html) and "Single-valued
// vs. multivalued context keys" (reference_policies_condition-single-vs-multi-valued-context-keys.html):
//   - "If the key that you specify in a policy condition is not present in
//     the request context, the values do not match and the condition is
//     false. If the policy condition requires that the key is not matched,
//     such as StringNotLike or ArnNotLike, and the right key is not present,
//     the condition is true. This logic applies to all condition operators
//     except ...IfExists and Null check.";
//   - "If the key values in the request resolve to an empty data set (for
//     example, an empty string), a condition operator modified by
//     ForAllValues returns true, and a condition operator modified by
//     ForAnyValue returns false." (and ForAllValues "also returns true if
//     there are no context keys in the request");
//   - the set qualifiers apply to Null too (not ignored): each request value
//     is a present value, so ForAllValues:Null "true" holds only for an
//     absent key and ForAnyValue:Null "false" only for a present one.
func (c *Condition) eval(ctx evalContext) bool {
	values := ctx[c.key]
	if len(values) == 0 {
		switch {
		case c.ifExists:
			return true
		case c.set == setAll:
			// Vacuously true: every one of no values is in the set. This is
			// the classic ForAllValues pitfall, kept on purpose.
			return true
		case c.set == setAny:
			return false
		case c.spec.fam == famNull:
			return c.nullHolds(true)
		}
		return c.spec.negated
	}
	switch c.set {
	case setAny:
		for _, v := range values {
			if c.valueOK(v, ctx) {
				return true
			}
		}
		return false
	case setAll:
		for _, v := range values {
			if !c.valueOK(v, ctx) {
				return false
			}
		}
		return true
	}
	if c.spec.fam == famNull {
		return c.nullHolds(false)
	}
	// No set prefix: a positive operator needs some request value to match;
	// a negated one needs every request value to match none of the policy
	// values.
	for _, v := range values {
		ok := c.valueOK(v, ctx)
		if c.spec.negated && !ok {
			return false
		}
		if !c.spec.negated && ok {
			return true
		}
	}
	return c.spec.negated
}

// nullHolds reports whether Null holds for a key that is absent (or not):
// the policy values ("true" = absent) are ORed.
func (c *Condition) nullHolds(absent bool) bool {
	for i := range c.vals {
		if c.vals[i].b == absent {
			return true
		}
	}
	return false
}

// valueOK reports whether one request value satisfies the operator: for a
// positive operator it matches some policy value, for a negated one it
// matches none. A request value that cannot be compared (not a number,
// date, address or ARN) fails either way. A policy value whose variable has
// no value matches nothing, so it fails a positive operator and satisfies a
// negated one: IAM User Guide, "IAM policy elements: Variables and tags",
// section "Policy variables with no value"
// (reference_policies_variables.html#policy-vars-no-value): "Inverted
// condition operators like StringNotEquals or StringNotLike do match
// against a null value, as the value of the condition key they are testing
// against is not equal to or like the effectively null value."
func (c *Condition) valueOK(v string, ctx evalContext) bool {
	if c.spec.fam == famNull {
		// A request value is present: Null holds for a "false" value.
		return c.nullHolds(false)
	}
	for i := range c.vals {
		switch c.compare(&c.vals[i], v, ctx) {
		case invalid:
			return false
		case match:
			return !c.spec.negated
		}
	}
	return c.spec.negated
}

// compare tests one request value against one policy value with the
// positive form of the operator.
func (c *Condition) compare(pv *condValue, v string, ctx evalContext) outcome {
	is := func(b bool) outcome {
		if b {
			return match
		}
		return noMatch
	}
	switch c.spec.fam {
	case famString:
		s, ok := pv.tmpl.resolveString(ctx)
		return is(ok && s == v)
	case famStringIgnoreCase:
		s, ok := pv.tmpl.resolveString(ctx)
		return is(ok && strings.EqualFold(s, v))
	case famStringLike:
		g, ok := pv.tmpl.resolveGlob(ctx)
		return is(ok && g.match(v))
	case famARN:
		// The IAM policy simulator refuses a request value that is not an
		// ARN for ArnLike and ArnNotLike alike (as PMapper recorded against
		// the Simulator API): neither operator holds.
		if !isARN(v) {
			return invalid
		}
		g, ok := pv.tmpl.resolveGlob(ctx)
		return is(ok && matchARN(g, v))
	case famNumeric:
		n, err := parseNumber(v)
		if err != nil {
			return invalid
		}
		return is(compareOrdered(c.spec.cmp, n, pv.num))
	case famDate:
		t, err := parseDate(v)
		if err != nil {
			return invalid
		}
		return is(compareOrdered(c.spec.cmp, t.Compare(pv.time), 0))
	case famBool:
		b, err := parseBool(v)
		if err != nil {
			return invalid
		}
		return is(b == pv.b)
	case famBinary:
		// Request values may be given base64-encoded, like the policy, or
		// as the raw bytes.
		if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
			return is(bytes.Equal(raw, pv.bytes))
		}
		return is(v == string(pv.bytes))
	case famIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return invalid
		}
		return is(pv.prefix.Contains(a.WithZone("").Unmap()))
	}
	return invalid
}

// isARN reports whether v has the shape of an ARN: "arn", a partition, a
// service, region, account and a resource part.
func isARN(v string) bool {
	parts := strings.SplitN(v, ":", arnParts)
	return len(parts) == arnParts && parts[0] == "arn" && parts[1] != "" && parts[2] != "" && parts[5] != ""
}

func compareOrdered[T int | float64](c comparison, a, b T) bool {
	switch c {
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	}
	return a == b
}

func parseNumber(s string) (float64, error) {
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("invalid number %q", clip(s))
	}
	return n, nil
}

// maxEpoch is the last second of year 9999; later epoch values are clamped
// to it, so any epoch IAM accepts (up to 2^63-1) still compares in order.
const maxEpoch = 253402300799

// parseDate accepts the date forms of IAM's Date operators: IAM User Guide,
// "IAM JSON policy elements: Condition operators", section "Date condition
// operators" (reference_policies_elements_condition_operators.html#Conditions_Date):
// "You must use one of the W3C implementations of the ISO 8601 date formats
// or in epoch (UNIX) time". A value with a '-' or a 'T' is ISO 8601 —
// YYYY-MM, YYYY-MM-DD, then optionally T, hh, :mm, :ss, a fraction, and a
// zone Z, ±hh or ±hh:mm (T and Z in either case; no zone means UTC) —
// anything else is epoch seconds (digits, an optional fraction). As IAM
// does, a lone "2024" is therefore epoch seconds, not a year, and months
// and days may have one digit; a day past the month's end rolls over.
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("invalid date %q: %s", clip(s), why)
	}
	if !strings.ContainsAny(s, "-tT") {
		if !isEpoch(s) {
			return bad("want ISO 8601 or epoch seconds")
		}
		secs, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(secs, 10, 64)
		if err != nil {
			// IAM takes epoch seconds up to 2^63-1 and no further.
			return bad("epoch seconds out of range")
		}
		if sec > maxEpoch {
			return time.Unix(maxEpoch, 0).UTC(), nil
		}
		var nanos int64
		if frac != "" {
			nanos, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		}
		return time.Unix(sec, nanos).UTC(), nil
	}
	date, clock, hasT := strings.Cut(strings.ToUpper(s), "T")
	ymd := strings.Split(date, "-")
	if len(ymd) < 2 || len(ymd) > 3 || len(ymd[0]) != 4 {
		return bad("want YYYY-MM[-DD] before any time")
	}
	// num parses a field of one or two digits (the year: four) in [lo, hi].
	num := func(f string, lo, hi int) (int, bool) {
		if f == "" || len(f) > 2 && hi != 9999 {
			return 0, false
		}
		for i := 0; i < len(f); i++ {
			if f[i] < '0' || f[i] > '9' {
				return 0, false
			}
		}
		n, _ := strconv.Atoi(f)
		return n, n >= lo && n <= hi
	}
	year, ok := num(ymd[0], 0, 9999)
	if !ok {
		return bad("year out of range")
	}
	month, ok := num(ymd[1], 1, 12)
	if !ok {
		return bad("month out of range")
	}
	day := 1
	if len(ymd) == 3 {
		if day, ok = num(ymd[2], 1, 31); !ok {
			return bad("day out of range")
		}
	}
	var hour, minute, sec, nanos int
	loc := time.UTC
	if hasT {
		// The zone: Z, or a sign followed by hh or hh:mm.
		if rest, ok := strings.CutSuffix(clock, "Z"); ok {
			clock = rest
		} else if i := strings.LastIndexAny(clock, "+-"); i >= 0 {
			zh, zm, _ := strings.Cut(clock[i+1:], ":")
			h, ok1 := num(zh, 0, 23)
			m, ok2 := 0, true
			if zm != "" || strings.HasSuffix(clock, ":") {
				m, ok2 = num(zm, 0, 59)
			}
			if !ok1 || !ok2 || len(zh) != 2 {
				return bad("invalid zone offset")
			}
			off := h*3600 + m*60
			if clock[i] == '-' {
				off = -off
			}
			loc = time.FixedZone("", off)
			clock = clock[:i]
		}
		parts := strings.Split(clock, ":")
		if len(parts) > 3 {
			return bad("want hh[:mm[:ss]] after T")
		}
		if hour, ok = num(parts[0], 0, 23); !ok {
			return bad("hour out of range")
		}
		if len(parts) > 1 {
			if minute, ok = num(parts[1], 0, 59); !ok {
				return bad("minute out of range")
			}
		}
		if len(parts) > 2 {
			whole, frac, hasFrac := strings.Cut(parts[2], ".")
			if sec, ok = num(whole, 0, 59); !ok {
				return bad("second out of range")
			}
			if hasFrac {
				if frac == "" || len(frac) > 9 || !isEpoch(frac) || strings.Contains(frac, ".") {
					return bad("invalid fraction of a second")
				}
				nanos, _ = strconv.Atoi((frac + "000000000")[:9])
			}
		}
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc).UTC(), nil
}

func isEpoch(s string) bool {
	if s == "" {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && !dot && i > 0:
			dot = true
		case c < '0' || c > '9':
			return false
		}
	}
	return s[len(s)-1] != '.'
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q: want true or false", clip(s))
}
