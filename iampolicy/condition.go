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

// eval reports whether the condition holds for the request context.
func (c *Condition) eval(ctx evalContext) bool {
	values := ctx[c.key]
	present := len(values) > 0
	if c.spec.fam == famNull {
		// Null: true asks "is the key absent?"; several values are ORed.
		for i := range c.vals {
			if c.vals[i].b == !present {
				return true
			}
		}
		return false
	}
	if !present {
		switch {
		case c.ifExists:
			return true
		case c.set == setAll:
			// Vacuously true: every one of no values is in the set. This is
			// the classic ForAllValues pitfall, kept on purpose.
			return true
		case c.set == setAny:
			return false
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
	// No set prefix: a positive operator needs some request value to match;
	// a negated one needs every request value to match none of the policy
	// values, i.e. it is exactly the negation of the positive operator.
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

// valueOK reports whether one request value satisfies the operator: for a
// positive operator it matches some policy value, for a negated one it
// matches none. A comparison that cannot be made (an unresolvable policy
// variable, a request value that is not a number or date) counts against
// the value either way, so missing data never satisfies a condition.
func (c *Condition) valueOK(v string, ctx evalContext) bool {
	for i := range c.vals {
		match, ok := c.compare(&c.vals[i], v, ctx)
		if !c.spec.negated && ok && match {
			return true
		}
		if c.spec.negated && (!ok || match) {
			return false
		}
	}
	return c.spec.negated
}

// compare tests one request value against one policy value with the
// positive form of the operator. ok is false when they cannot be compared.
func (c *Condition) compare(pv *condValue, v string, ctx evalContext) (match, ok bool) {
	switch c.spec.fam {
	case famString:
		s, ok := pv.tmpl.resolveString(ctx)
		return ok && s == v, ok
	case famStringIgnoreCase:
		s, ok := pv.tmpl.resolveString(ctx)
		return ok && strings.EqualFold(s, v), ok
	case famStringLike:
		g, ok := pv.tmpl.resolveGlob(ctx)
		return ok && g.match(v), ok
	case famARN:
		g, ok := pv.tmpl.resolveGlob(ctx)
		return ok && matchARN(g, v), ok
	case famNumeric:
		n, err := parseNumber(v)
		if err != nil {
			return false, false
		}
		return compareOrdered(c.spec.cmp, n, pv.num), true
	case famDate:
		t, err := parseDate(v)
		if err != nil {
			return false, false
		}
		return compareOrdered(c.spec.cmp, t.UnixNano(), pv.time.UnixNano()), true
	case famBool:
		b, err := parseBool(v)
		if err != nil {
			return false, false
		}
		return b == pv.b, true
	case famBinary:
		// Request values may be given base64-encoded, like the policy, or
		// as the raw bytes.
		if raw, err := base64.StdEncoding.DecodeString(v); err == nil {
			return bytes.Equal(raw, pv.bytes), true
		}
		return v == string(pv.bytes), true
	case famIP:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false, false
		}
		return pv.prefix.Contains(a.WithZone("").Unmap()), true
	}
	return false, false
}

func compareOrdered[T int64 | float64](c comparison, a, b T) bool {
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

// parseDate accepts ISO 8601 dates and times and epoch seconds (with an
// optional fraction), the two forms AWS documents for Date operators. Forms
// without a zone are UTC, as in AWS.
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	layouts := [...]string{
		time.RFC3339Nano, // also accepts no fraction
		"2006-01-02T15:04Z07:00",
		"2006-01-02T15:04:05.999999999",
		"2006-01-02T15:04",
		"2006-01-02",
		"20060102T150405Z0700",
		"20060102T150405Z",
		"20060102", // tried before epoch seconds: eight digits are a basic-format date
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1678 || t.Year() > 2261 {
				// Outside what UnixNano, used for comparisons, can hold.
				return time.Time{}, fmt.Errorf("invalid date %q: year out of range", clip(s))
			}
			return t.UTC(), nil
		}
	}
	if isEpoch(s) {
		secs, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(secs, 10, 64)
		// Bound the range (to year 2242) so UnixNano cannot overflow.
		if err == nil && sec < 1<<33 {
			var nanos int64
			if frac != "" {
				nanos, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			}
			return time.Unix(sec, nanos).UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid date %q: want ISO 8601 or epoch seconds", clip(s))
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
