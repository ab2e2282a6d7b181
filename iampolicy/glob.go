package iampolicy

import (
	"strings"
	"unicode/utf8"
)

// glob is a compiled wildcard pattern: literal runes plus the two wildcard
// markers below. Keeping wildcards out of band lets a literal "*" (from the
// ${*} escape or a substituted variable) sit in a pattern without acting as
// a wildcard.
type glob []rune

// Wildcard markers; negative, so they never collide with a decoded rune.
const (
	globStar rune = -1 // "*": any run of characters, including none
	globOne  rune = -2 // "?": exactly one character
)

// compileGlob turns s into a pattern in which every "*" and "?" is a
// wildcard.
func compileGlob(s string) glob {
	g := make(glob, 0, len(s))
	for _, r := range s {
		switch r {
		case '*':
			g = append(g, globStar)
		case '?':
			g = append(g, globOne)
		default:
			g = append(g, r)
		}
	}
	return g
}

// match reports whether the pattern matches all of s.
//
// It backtracks only to the most recent "*" (a later star can always absorb
// what an earlier one would have), so it runs in O(len(g)·len(s)) time in
// the worst case and linear time on typical patterns — never the exponential
// time of a naive recursive matcher — and allocates nothing.
func (g glob) match(s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0 // where to resume after the last "*"
	for px < len(g) || sx < len(s) {
		if px < len(g) {
			switch c := g[px]; c {
			case globStar:
				starPx, starSx = px, sx
				px++
				continue
			case globOne:
				if sx < len(s) {
					_, w := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += w
					continue
				}
			default:
				if sx < len(s) {
					if r, w := utf8.DecodeRuneInString(s[sx:]); r == c {
						px++
						sx += w
						continue
					}
				}
			}
		}
		// Mismatch: let the last "*" swallow one more character and retry.
		if starPx >= 0 && starSx < len(s) {
			_, w := utf8.DecodeRuneInString(s[starSx:])
			starSx += w
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

// String renders the pattern with wildcards as "*" and "?", for tests and
// diagnostics.
func (g glob) String() string {
	var b strings.Builder
	for _, r := range g {
		switch r {
		case globStar:
			b.WriteByte('*')
		case globOne:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// arnParts is the number of colon-separated components of an ARN:
// arn:partition:service:region:account:resource (the resource may itself
// contain colons).
const arnParts = 6

// matchARN matches an ARN against a pattern component by component, as IAM
// does for Resource and the Arn* condition operators, so that a wildcard in
// one component (say the account) cannot swallow the colon into the next.
// Patterns with fewer than six components ("*") match the whole string.
func matchARN(pattern glob, arn string) bool {
	pp := splitGlob(pattern, arnParts)
	if len(pp) < arnParts {
		return pattern.match(arn)
	}
	ap := strings.SplitN(arn, ":", arnParts)
	if len(ap) < arnParts {
		return false
	}
	for i := range pp {
		if !pp[i].match(ap[i]) {
			return false
		}
	}
	return true
}

// splitGlob splits a pattern on literal ':' into at most n parts, the last
// one holding the rest.
func splitGlob(g glob, n int) []glob {
	parts := make([]glob, 0, n)
	start := 0
	for i, r := range g {
		if len(parts) == n-1 {
			break
		}
		if r == ':' {
			parts = append(parts, g[start:i])
			start = i + 1
		}
	}
	return append(parts, g[start:])
}

// tpartKind is the kind of one piece of a template.
type tpartKind int

const (
	tLit  tpartKind = iota // literal text
	tStar                  // a bare "*": wildcard where wildcards apply
	tOne                   // a bare "?": wildcard where wildcards apply
	tVar                   // a policy variable ${key} or ${key, 'default'}
)

type tpart struct {
	kind   tpartKind
	text   string // literal text, or the lower-cased variable key
	def    string // default value of a variable
	hasDef bool
}

// template is a Resource or condition value that may contain policy
// variables. Templates without variables are resolved once at parse time.
type template struct {
	parts  []tpart
	hasVar bool
	static bool   // no variables: glob and str are precomputed
	glob   glob   // resolved pattern when static
	str    string // resolved literal text when static
}

// compileTemplate splits s into literals, wildcards and (when vars is set,
// i.e. in Version 2012-10-17 documents) policy variables. ${*}, ${?} and
// ${$} are escapes for a literal "*", "?" and "$".
func compileTemplate(s string, vars bool) template {
	var t template
	lit := func(text string) {
		for text != "" {
			i := strings.IndexAny(text, "*?")
			if i < 0 {
				t.parts = append(t.parts, tpart{kind: tLit, text: text})
				return
			}
			if i > 0 {
				t.parts = append(t.parts, tpart{kind: tLit, text: text[:i]})
			}
			k := tStar
			if text[i] == '?' {
				k = tOne
			}
			t.parts = append(t.parts, tpart{kind: k})
			text = text[i+1:]
		}
	}
	for s != "" {
		i := strings.Index(s, "${")
		if !vars || i < 0 {
			lit(s)
			break
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			// An unterminated "${" is just text.
			lit(s)
			break
		}
		lit(s[:i])
		inner := s[i+2 : i+end]
		s = s[i+end+1:]
		switch inner {
		case "*", "?", "$":
			t.parts = append(t.parts, tpart{kind: tLit, text: inner})
			continue
		}
		p := tpart{kind: tVar, text: inner}
		if name, def, ok := strings.Cut(inner, ","); ok {
			def = strings.TrimSpace(def)
			if len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' {
				// Not the ${key, 'default'} form; keep it verbatim.
				t.parts = append(t.parts, tpart{kind: tLit, text: "${" + inner + "}"})
				continue
			}
			p.text, p.def, p.hasDef = name, def[1:len(def)-1], true
		}
		p.text = strings.ToLower(strings.TrimSpace(p.text))
		t.parts = append(t.parts, p)
		t.hasVar = true
	}
	if !t.hasVar {
		t.glob, _ = t.buildGlob(nil)
		t.str, _ = t.buildString(nil)
		t.static = true
	}
	return t
}

// resolveGlob substitutes variables from ctx and returns the pattern in
// which only the template's own bare "*" and "?" are wildcards. ok is false
// when a variable cannot be resolved.
func (t *template) resolveGlob(ctx evalContext) (glob, bool) {
	if t.static {
		return t.glob, true
	}
	return t.buildGlob(ctx)
}

// resolveString substitutes variables from ctx and returns literal text, for
// operators that do not interpret wildcards. ok is false when a variable
// cannot be resolved.
func (t *template) resolveString(ctx evalContext) (string, bool) {
	if t.static {
		return t.str, true
	}
	return t.buildString(ctx)
}

func (t *template) buildGlob(ctx evalContext) (glob, bool) {
	g := glob{}
	for _, p := range t.parts {
		switch p.kind {
		case tLit:
			g = append(g, []rune(p.text)...)
		case tStar:
			g = append(g, globStar)
		case tOne:
			g = append(g, globOne)
		case tVar:
			v, ok := ctx.variable(p)
			if !ok {
				return nil, false
			}
			g = append(g, []rune(v)...)
		}
	}
	return g, true
}

func (t *template) buildString(ctx evalContext) (string, bool) {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case tLit:
			b.WriteString(p.text)
		case tStar:
			b.WriteByte('*')
		case tOne:
			b.WriteByte('?')
		case tVar:
			v, ok := ctx.variable(p)
			if !ok {
				return "", false
			}
			b.WriteString(v)
		}
	}
	return b.String(), true
}
