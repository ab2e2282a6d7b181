package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// strictDecode is how Parse decoded before unknownKeys: a second parse by
// a yaml.Decoder with KnownFields. Its messages are the reference.
func strictDecode(data []byte) []string {
	var c Config
	err := safeYAML(func() error {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		return dec.Decode(&c)
	})
	return typeErrors(err)
}

func typeErrors(err error) []string {
	if err == nil {
		return nil
	}
	if te, ok := err.(*yaml.TypeError); ok {
		return te.Errors
	}
	return []string{err.Error()}
}

// treeDecode is Parse's way: one parse, the tree decoded, unknown keys
// found by unknownKeys.
func treeDecode(data []byte) []string {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	var c Config
	root := doc.Content[0]
	unknown := unknownKeys(root, reflect.TypeFor[Config](), nil)
	err := safeYAML(func() error { return root.Decode(&c) })
	if len(unknown) > 0 {
		err = mergeTypeErrors(unknown, err)
	}
	return typeErrors(err)
}

var keyLine = regexp.MustCompile(`^(\s*)(- )?[A-Za-z_]+:`)

// TestUnknownKeysAsStrictDecoder: on every config of the repository and
// each with an unknown key inserted beside every key, the single parse
// reports what the strict decoder reported, in its order.
func TestUnknownKeysAsStrictDecoder(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "../config.example.yaml")
	ex, _ := filepath.Glob("../examples/*/*.yaml")
	files = append(files, ex...)
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || expandedSize(doc.Content[0], map[*yaml.Node]int{}) > maxExpandedSize {
			continue
		}
		variants := [][]byte{data}
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			m := keyLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			indent := m[1]
			if m[2] != "" {
				indent += "  "
			}
			v := slices.Clone(lines)
			v = slices.Insert(v, i+1, indent+"zz_unknown_key: 1")
			variants = append(variants, []byte(strings.Join(v, "\n")))
		}
		for _, v := range variants {
			if yaml.Unmarshal(v, &yaml.Node{}) != nil {
				continue // the insertion broke the syntax
			}
			n++
			want, got := strictDecode(v), treeDecode(v)
			if !slices.Equal(want, got) {
				t.Errorf("%s:\n%s\nstrict decoder: %q\nsingle parse:   %q", f, v, want, got)
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d configs compared", n)
	}
}

// TestValidName: the hand-written check is the regular expression it
// replaced.
func TestValidName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@+=,-]{0,63}$`)
	alphabet := "aZ09_.@+=,-/ é\x00\n"
	var names []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		names = append(names, prefix)
		if depth == 3 {
			return
		}
		for _, r := range alphabet {
			gen(prefix+string(r), depth+1)
		}
	}
	gen("", 0)
	names = append(names, strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65), "a"+strings.Repeat("-", 63))
	for _, n := range names {
		if got, want := validName(n), re.MatchString(n); got != want {
			t.Errorf("validName(%q) = %v, the expression says %v", n, got, want)
		}
	}
}

// TestQuickSessionName: where it applies, the quick rendering is the
// template's own; templates reading anything else are left to it.
func TestQuickSessionName(t *testing.T) {
	for tmpl, quick := range map[string]bool{
		"{{.Client}}": true, "bench-{{.Client}}": true, "{{.Role}}-{{.Client}}-x": true, "plain": true,
		"{{- .Client -}} x": true, "": true, "{{.UID}}": false, "{{.Client | printf \"%s\"}}": false,
		"{{printf \"%s\" .Client}}": false, "{{$x := .Client}}{{$x}}": false, "{{if .Client}}a{{end}}": false,
		"{{.Client}}{{/* c */}}": true, "{{define \"t\"}}x{{end}}{{.Client}}": true,
	} {
		cfg, err := Parse([]byte("roles: [{name: r, session_name: " + strconvQuote(tmpl) + "}]\n"))
		if err != nil {
			t.Fatalf("%q: %v", tmpl, err)
		}
		r := cfg.Roles[0]
		got, ok := r.QuickSessionName("cl.ient", "ro-le")
		if ok != quick {
			t.Errorf("%q: quick = %v, want %v", tmpl, ok, quick)
		}
		if !ok {
			continue
		}
		var b strings.Builder
		if err := r.SessionTemplate.Execute(&b, sessionData{Client: "cl.ient", Role: "ro-le"}); err != nil {
			t.Fatal(err)
		}
		if got != b.String() {
			t.Errorf("%q: quick %q, template %q", tmpl, got, b.String())
		}
	}
}

func strconvQuote(s string) string { return strconv.Quote(s) }
