// Package scaleconfig writes trust configs of many clients, one shape for
// the agent's benchmarks and for `go run ./bench`, so that both measure the
// same thing: clients of every kind of exact match (bearer tokens, uids,
// systemd units, JWT subjects, container labels, source CIDRs), or the
// same kinds written as globs, which the agent has to scan.
package scaleconfig

import (
	"fmt"
	"strings"
)

// Provider is the identity_providers entry name the JWT clients use.
const Provider = "scale"

// ProviderYAML is the identity_providers section the JWT clients need,
// with its keys in jwksFile.
func ProviderYAML(jwksFile string) string {
	return "identity_providers:\n  - { name: " + Provider + ", issuer: \"https://scale.example\", audiences: [credsidecar], jwks_file: " + jwksFile + " }\n"
}

// Kinds is how many kinds of client Clients cycles through.
const Kinds = 6

// Clients writes n entries of a clients list (each "  - name: …",
// indented for a top-level clients: key) allowed role, cycling through the
// kinds: a token, a uid, a systemd unit, a JWT subject (of Provider), a
// container label, a source CIDR in 10.0.0.0/8. With glob, every client
// matches on a glob, so none can be indexed: the unit, subject and
// container kinds glob their own value, and the token, uid and CIDR kinds
// (which have no glob form) become an exe, a cgroup and a container image
// glob. None of them matches a caller from
// 127.0.0.0/8 with no bearer token, an unprivileged uid below 100000, and a
// unit, subject or container label not of the form they use.
func Clients(b *strings.Builder, n int, glob bool, role string) {
	star := ""
	if glob {
		star = "*"
	}
	for i := range n {
		fmt.Fprintf(b, "  - name: scale-%06d\n    match: ", i)
		switch i % Kinds {
		case 0:
			if glob {
				// A token has no glob form: a glob on the executable
				// instead, which needs the process as a unit does.
				fmt.Fprintf(b, "{ exe: \"/opt/scale/%06d/*\" }", i)
			} else {
				fmt.Fprintf(b, "{ token: %s }", Token(i))
			}
		case 1:
			if glob {
				fmt.Fprintf(b, "{ cgroup: \"/scale.slice/%06d-*\" }", i)
			} else {
				fmt.Fprintf(b, "{ uids: [%d] }", 100000+i)
			}
		case 2:
			fmt.Fprintf(b, "{ systemd_unit: \"scale-%06d%s.service\" }", i, star)
		case 3:
			fmt.Fprintf(b, "{ jwt: { provider: %s, subject: \"system:serviceaccount:scale:sa-%06d%s\" } }", Provider, i, star)
		case 4:
			if glob {
				fmt.Fprintf(b, "{ container: { name: \"scale-%06d-*\" } }", i)
			} else {
				fmt.Fprintf(b, "{ container: { labels: { scale.app: \"app-%06d\" } } }", i)
			}
		case 5:
			if glob {
				fmt.Fprintf(b, "{ container: { image: \"scale/app-%06d:*\" } }", i)
			} else {
				fmt.Fprintf(b, "{ source_cidrs: [\"10.%d.%d.%d/32\"] }", i>>16&255, i>>8&255, i&255)
			}
		}
		fmt.Fprintf(b, "\n    roles: [%s]\n", role)
	}
}

// Token is the bearer token of the i-th client when it is a token client.
func Token(i int) string { return fmt.Sprintf("scale-token-%06d", i) }
