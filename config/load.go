package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds a config file: anything larger is refused before parsing.
const MaxFileSize = 4 << 20

// Problem is one finding, tied to a YAML line (0 when not tied to one).
type Problem struct {
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	}
	return p.Msg
}

// Error lists every problem found in a config; it is never returned empty.
type Error struct {
	Path     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	name := e.Path
	if name == "" {
		name = "config"
	}
	fmt.Fprintf(&b, "%s: %d problem(s)", name, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Env looks up an environment variable; os.LookupEnv in production.
type Env func(string) (string, bool)

// ReadFile reads a referenced file; os.ReadFile in production.
type ReadFile func(string) ([]byte, error)

// Load reads, parses, validates and resolves the config at path. The file
// and every file it refers to are read once, into a snapshot that the
// config keeps (see Config.ReadFile).
func Load(path string) (*Config, error) {
	s, err := takeSnapshot(path, readLimited, nil)
	if err != nil {
		return nil, err
	}
	return s.build(readLimited, os.LookupEnv, nil)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// Parse decodes and validates a config from bytes, filling defaults. Secret
// references are not resolved (see Resolve). Every problem is reported, each
// with its line, in one *Error.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{Problems: []Problem{{Msg: fmt.Sprintf("config is larger than %d bytes", MaxFileSize)}}}
	}
	var doc yaml.Node
	if err := safeYAML(func() error { return yaml.Unmarshal(data, &doc) }); err != nil {
		return nil, &Error{Problems: yamlProblems(err)}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{Problems: []Problem{{Msg: "config is empty"}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Problems: []Problem{{Line: root.Line, Msg: "config must be a mapping of keys"}}}
	}
	// Policies are rendered from the node tree, outside yaml.v3's own alias
	// accounting: without this bound a few hundred bytes of nested aliases
	// expand into gigabytes of policy JSON.
	if expandedSize(root, map[*yaml.Node]int{}) > maxExpandedSize {
		return nil, &Error{Problems: []Problem{{Line: root.Line, Msg: fmt.Sprintf("config expands to more than %d bytes through YAML aliases", maxExpandedSize)}}}
	}
	if k := complexKey(root); k != nil {
		return nil, &Error{Problems: []Problem{{Line: k.Line, Msg: "a mapping key must be a plain string, not a " + kindName(k)}}}
	}
	c := &Config{}
	// One parse: the tree is decoded as it is, its unknown keys found by
	// unknownKeys (Node.Decode has no KnownFields).
	unknown := unknownKeys(root, reflect.TypeFor[Config](), nil)
	err := safeYAML(func() error { return root.Decode(c) })
	if len(unknown) > 0 {
		err = mergeTypeErrors(unknown, err)
	}
	if err != nil {
		return nil, &Error{Problems: yamlProblems(err)}
	}
	v := validator{root: root}
	c.fillDefaults()
	if !v.has("cache", "warm_max") {
		// Here, not in fillDefaults: 0 written out means no warm-up.
		c.Cache.WarmMax = DefaultWarmMax
	}
	v.validate(c)
	if len(v.problems) > 0 {
		sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
		return nil, &Error{Problems: v.problems}
	}
	c.Warnings = v.warnings
	return c, nil
}

// mergeTypeErrors adds the unknown-key messages to err's (a *yaml.TypeError
// or nil), in line order as a strict decoder reports them; any other error
// is returned as it is.
func mergeTypeErrors(unknown []string, err error) error {
	var te *yaml.TypeError
	if err != nil && !errors.As(err, &te) {
		return err
	}
	msgs := unknown
	if te != nil {
		msgs = append(msgs, te.Errors...)
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgLine(msgs[i]) < msgLine(msgs[j]) })
	return &yaml.TypeError{Errors: msgs}
}

// msgLine is the N of a yaml.v3 message "line N: ..." (0 without one).
func msgLine(m string) int {
	rest, ok := strings.CutPrefix(m, "line ")
	if !ok {
		return 0
	}
	i := strings.IndexByte(rest, ':')
	if i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(rest[:i])
	return n
}

// safeYAML runs f, turning a runtime panic inside yaml.v3 into an error:
// v3.0.1 still panics on some malformed input, and a bad file must not
// crash the daemon when it reloads.
func safeYAML(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder failed on this file: %v", r)
		}
	}()
	return f()
}

// complexKey returns the first mapping key that is not a scalar (or an alias
// of one). The schema has none, and yaml.v3 v3.0.1 panics on one beside a
// merge key ("{{},<<}": it hashes the key as a Go map).
func complexKey(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return n.Content[i]
			}
		}
	}
	// Aliases are not followed: their targets are in the tree already.
	for _, c := range n.Content {
		if k := complexKey(c); k != nil {
			return k
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	default:
		return "non-scalar node"
	}
}

// maxExpandedSize bounds a config with its aliases expanded. A file
// without aliases stays well under it (see expandedSize).
const maxExpandedSize = 2 * MaxFileSize

// expandedSize estimates the size of n with every alias expanded: the bytes
// of its scalars plus one per node. It counts each anchored node once
// (memo) and stops as soon as the total passes maxExpandedSize; an alias
// cycle counts as too large.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	// Only anchored nodes can be reached twice (through aliases), or be
	// their own ancestor: only they are memoized, which spares a map entry
	// per node of a large config.
	anchored := n.Anchor != ""
	if anchored {
		if s, ok := memo[n]; ok {
			if s < 0 { // n is its own ancestor
				return maxExpandedSize + 1
			}
			return s
		}
		memo[n] = -1
	}
	size := 1 + len(n.Value)
	if n.Kind == yaml.AliasNode {
		size += expandedSize(n.Alias, memo)
	}
	for _, c := range n.Content {
		if size > maxExpandedSize {
			break
		}
		size += expandedSize(c, memo)
	}
	if size > maxExpandedSize {
		size = maxExpandedSize + 1
	}
	if anchored {
		memo[n] = size
	}
	return size
}

// parserProblems are the problems yaml.v3's parser (not its scanner)
// reports. yaml.v3 v3.0.1 prints their marks 0-based ("line 2" for the
// third line, no line at all for the first); yamlProblems corrects that.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
	"found undefined tag handle":             true,
}

// yamlProblems turns yaml.v3's errors ("yaml: line 3: ...", or a TypeError
// listing "line N: ...") into problems with lines.
func yamlProblems(err error) []Problem {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]Problem, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		p := Problem{Msg: m}
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if i := strings.Index(rest, ":"); i > 0 {
				if n, err := strconv.Atoi(rest[:i]); err == nil {
					p = Problem{Line: n, Msg: strings.TrimSpace(rest[i+1:])}
				}
			}
		}
		if te == nil && parserProblems[p.Msg] {
			p.Line++ // 0-based in yaml.v3, and absent when 0
		}
		// Type names are Go internals; say it the user's way.
		p.Msg = strings.ReplaceAll(p.Msg, "not found in type config.", "is not a known key in ")
		out = append(out, p)
	}
	return out
}

func lineErr(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, fmt.Sprintf(format, args...))}}
}

// UnmarshalYAML reads a Go duration string such as "1h" or "90s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "a duration must be a string such as \"1h\" or \"15m\"")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return lineErr(n, "invalid duration %q: use a Go duration such as \"1h\", \"15m\" or \"90s\"", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a CIDR or a single address.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "a CIDR must be a string such as \"127.0.0.1/32\"")
	}
	if strings.Contains(n.Value, "/") {
		v, err := netip.ParsePrefix(n.Value)
		if err != nil {
			return lineErr(n, "invalid CIDR %q", n.Value)
		}
		p.Prefix = v.Masked()
		return nil
	}
	a, err := netip.ParseAddr(n.Value)
	if err != nil {
		return lineErr(n, "invalid address or CIDR %q", n.Value)
	}
	p.Prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	return nil
}

// UnmarshalYAML reads a secret: a literal string, or a mapping with exactly
// one of env:, file: or sha256:.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	s.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		// An empty literal would be a token that an empty header matches.
		if n.Tag == "!!null" || n.Value == "" {
			return lineErr(n, "secret is empty: give a string or one of env:, file:, sha256:")
		}
		s.Literal = n.Value
		return nil
	case yaml.MappingNode:
	default:
		return lineErr(n, "a secret must be a string or a mapping with one of env:, file:, sha256:")
	}
	if len(n.Content) != 2 {
		return lineErr(n, "a secret reference has exactly one of env:, file:, sha256:")
	}
	k, v := n.Content[0], n.Content[1]
	if v.Kind != yaml.ScalarNode || v.Value == "" {
		return lineErr(v, "%s: needs a non-empty string", k.Value)
	}
	switch k.Value {
	case "env":
		s.Env = v.Value
	case "file":
		s.File = v.Value
	case "sha256":
		h := strings.ToLower(v.Value)
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return lineErr(v, "sha256: must be 64 hex characters (e.g. the output of `printf %%s TOKEN | sha256sum`)")
		}
		s.SHA256 = h
	default:
		return lineErr(k, "%q is not a secret reference: use env:, file: or sha256:", k.Value)
	}
	return nil
}

// UnmarshalYAML accepts a policy as a YAML mapping with IAM's keys or as a
// string holding the JSON document. Scalars of a mapping keep their source
// text, so an unquoted 2012-10-17 stays a string and 012345678901 keeps its
// leading zero.
func (p *Policy) UnmarshalYAML(n *yaml.Node) error {
	p.Line = n.Line
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return lineErr(n, "policy is empty")
		}
		var probe map[string]any
		if err := json.Unmarshal([]byte(n.Value), &probe); err != nil {
			return lineErr(n, "policy string is not a JSON object: %v", err)
		}
		p.JSON = n.Value
		return nil
	case yaml.MappingNode:
		var b bytes.Buffer
		if err := nodeJSON(&b, n, 0); err != nil {
			return err
		}
		p.JSON = b.String()
		return nil
	default:
		return lineErr(n, "a policy must be a mapping (Version, Statement) or a JSON string")
	}
}

// nodeJSON writes n as JSON with every scalar as a string of its source text
// (IAM itself treats condition values as strings).
func nodeJSON(b *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > 64 {
		return lineErr(n, "policy is nested too deeply")
	}
	switch n.Kind {
	case yaml.AliasNode:
		return nodeJSON(b, n.Alias, depth+1)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			if n.Content[i].Tag == "!!merge" {
				// Rendering "<<" as a key would silently drop the merged fields.
				return lineErr(n.Content[i], "YAML merge keys (<<) are not supported in policies")
			}
			k, _ := json.Marshal(n.Content[i].Value)
			b.Write(k)
			b.WriteByte(':')
			if err := nodeJSON(b, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := nodeJSON(b, c, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			b.WriteString("null")
			return nil
		}
		v, _ := json.Marshal(n.Value)
		b.Write(v)
	default:
		return lineErr(n, "unsupported YAML node in policy")
	}
	return nil
}

// Resolve reads env: and file: secret references. Problems name their lines;
// secret values never appear in messages.
func (c *Config) Resolve(env Env, read ReadFile) error {
	var problems []Problem
	resolve := func(s *Secret, what string) {
		if s == nil {
			return
		}
		switch {
		case s.Literal != "":
			s.Value = s.Literal
		case s.Env != "":
			v, ok := env(s.Env)
			if !ok || v == "" {
				problems = append(problems, Problem{s.Line, fmt.Sprintf("%s: environment variable %s is not set or empty", what, s.Env)})
				return
			}
			s.Value = v
		case s.File != "":
			data, err := read(s.File)
			if err != nil {
				// The path is in the message already; keep only the cause.
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				problems = append(problems, Problem{s.Line, fmt.Sprintf("%s: read %s: %v", what, s.File, err)})
				return
			}
			// Editors add a trailing newline; SDKs send the file verbatim
			// (Go even refuses a newline), so compare without it.
			v := strings.TrimRight(string(data), "\r\n")
			if v == "" {
				problems = append(problems, Problem{s.Line, fmt.Sprintf("%s: file %s is empty", what, s.File)})
				return
			}
			s.Value = v
		}
	}
	for i := range c.Clients {
		resolve(c.Clients[i].Match.Token, fmt.Sprintf("clients[%s].match.token", c.Clients[i].Name))
	}
	for i := range c.IdentityProviders {
		if k := c.IdentityProviders[i].Kubernetes; k != nil {
			resolve(k.NodeName, fmt.Sprintf("identity_providers[%s].kubernetes.node_name", c.IdentityProviders[i].Name))
		}
	}
	for i := range c.STS.Local.Users {
		resolve(&c.STS.Local.Users[i].SecretAccessKey, fmt.Sprintf("sts.local.users[%s].secret_access_key", c.STS.Local.Users[i].Name))
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

// ReferencedFiles lists the files the config depends on besides itself
// (token files, JWKS files, the signing key), for the watcher.
func (c *Config) ReferencedFiles() []string {
	var out []string
	for _, cl := range c.Clients {
		if t := cl.Match.Token; t != nil && t.File != "" {
			out = append(out, t.File)
		}
	}
	for _, u := range c.STS.Local.Users {
		if u.SecretAccessKey.File != "" {
			out = append(out, u.SecretAccessKey.File)
		}
	}
	for _, p := range c.STS.Local.OIDCProviders {
		if p.JWKSFile != "" {
			out = append(out, p.JWKSFile)
		}
	}
	if c.STS.Local.SigningKeyFile != "" {
		out = append(out, c.STS.Local.SigningKeyFile)
	}
	return append(out, c.identityFiles()...)
}
