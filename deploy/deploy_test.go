// Package deploy holds no code: its tests check the deployment files under
// deploy/ and examples/compose — every YAML document parses, Kubernetes
// manifests have well-formed kinds, apiVersions and key names, the embedded
// credsidecar configs pass config.Parse, and the pieces refer to each other
// consistently (addresses, ports, tokens, volumes).
package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/credsidecar/credsidecar/config"
)

// roots are the directories whose YAML files are checked.
var roots = []string{".", "../examples/compose"}

type document struct {
	file  string
	index int
	node  *yaml.Node // the document's root mapping
	value map[string]any
}

func (d document) String() string { return fmt.Sprintf("%s#%d", d.file, d.index) }

// loadAll parses every document of every YAML file under the roots.
func loadAll(t *testing.T) []document {
	t.Helper()
	var docs []document
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			dec := yaml.NewDecoder(bytes.NewReader(data))
			for i := 0; ; i++ {
				var n yaml.Node
				err := dec.Decode(&n)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Errorf("%s: document %d: %v", p, i, err)
					break
				}
				d := document{file: filepath.ToSlash(p), index: i, node: n.Content[0]}
				if d.node.Kind != yaml.MappingNode {
					t.Errorf("%s: document %d is not a mapping", d.file, i)
					continue
				}
				// Decoding into a map also rejects duplicate keys.
				if err := n.Decode(&d.value); err != nil {
					t.Errorf("%s: %v", d, err)
					continue
				}
				docs = append(docs, d)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	if len(docs) == 0 {
		t.Fatal("no YAML documents found")
	}
	return docs
}

// get follows a path of map keys and list indexes.
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, keys ...any) string {
	s, _ := get(v, keys...).(string)
	return s
}

func list(v any, keys ...any) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

func TestEveryYAMLDocumentParses(t *testing.T) {
	for _, d := range loadAll(t) {
		t.Logf("%s: ok", d)
	}
}

// kinds are the apiVersion of each kind the manifests may use.
var kinds = map[string]string{
	"Namespace":          "v1",
	"ServiceAccount":     "v1",
	"ConfigMap":          "v1",
	"Secret":             "v1",
	"ClusterRole":        "rbac.authorization.k8s.io/v1",
	"ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
	"DaemonSet":          "apps/v1",
	"Deployment":         "apps/v1",
}

// k8sFields are the Kubernetes field names the manifests may use: a key
// outside this list is a typo (Kubernetes ignores unknown fields, or rejects
// them, only when the manifest is applied).
var k8sFields = setOf(`apiVersion kind metadata name namespace labels annotations spec
	data stringData type automountServiceAccountToken selector matchLabels updateStrategy
	rollingUpdate maxUnavailable maxSurge template serviceAccountName hostNetwork dnsPolicy
	tolerations operator key value effect terminationGracePeriodSeconds priorityClassName
	nodeSelector initContainers containers image imagePullPolicy command args env valueFrom
	fieldRef fieldPath secretKeyRef configMapKeyRef ports containerPort protocol
	livenessProbe readinessProbe startupProbe httpGet host port path scheme periodSeconds
	timeoutSeconds failureThreshold successThreshold initialDelaySeconds resources requests
	limits cpu memory securityContext runAsUser runAsGroup runAsNonRoot fsGroup
	allowPrivilegeEscalation readOnlyRootFilesystem capabilities drop add seccompProfile
	volumeMounts mountPath readOnly volumes configMap secret secretName defaultMode items
	replicas optional projected sources serviceAccountToken audience expirationSeconds roleRef apiGroup subjects rules apiGroups verbs`)

// freeForm are the maps whose keys are user data, not field names.
// clusterScoped kinds have no namespace.
var clusterScoped = setOf(`Namespace ClusterRole ClusterRoleBinding`)

var freeForm = setOf(`labels annotations matchLabels nodeSelector data stringData`)

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	dataKey      = regexp.MustCompile(`^[-._a-zA-Z0-9]{1,253}$`)
	labelKey     = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// checkKeys walks n and reports every mapping key that is not a known field
// name (or, inside free-form maps, not a valid label or data key).
func checkKeys(t *testing.T, d document, n *yaml.Node, parent string) {
	t.Helper()
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			checkKeys(t, d, c, parent)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			switch {
			case parent == "data" || parent == "stringData":
				if !dataKey.MatchString(k) {
					t.Errorf("%s line %d: %q is not a valid ConfigMap/Secret key", d, n.Content[i].Line, k)
				}
				continue // values are opaque
			case freeForm[parent]:
				if !labelKey.MatchString(k) {
					t.Errorf("%s line %d: %q is not a valid label key", d, n.Content[i].Line, k)
				}
				continue
			case !k8sFields[k]:
				t.Errorf("%s line %d: unknown Kubernetes field %q (under %q)", d, n.Content[i].Line, k, parent)
			}
			checkKeys(t, d, v, k)
		}
	}
}

func kubeDocs(t *testing.T) []document {
	var out []document
	for _, d := range loadAll(t) {
		if strings.HasPrefix(d.file, "kubernetes/") {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		t.Fatal("no Kubernetes manifests under deploy/kubernetes")
	}
	return out
}

// podSpecs returns the pod template spec of workloads.
func podSpec(d document) any {
	switch str(d.value, "kind") {
	case "DaemonSet", "Deployment":
		return get(d.value, "spec", "template", "spec")
	}
	return nil
}

func TestKubernetesManifests(t *testing.T) {
	for _, d := range kubeDocs(t) {
		kind, api := str(d.value, "kind"), str(d.value, "apiVersion")
		if want, ok := kinds[kind]; !ok {
			t.Errorf("%s: unexpected kind %q", d, kind)
		} else if api != want {
			t.Errorf("%s: %s has apiVersion %q, want %q", d, kind, api, want)
		}
		if name := str(d.value, "metadata", "name"); !dnsSubdomain.MatchString(name) {
			t.Errorf("%s: metadata.name %q is not a DNS subdomain", d, name)
		}
		if ns := str(d.value, "metadata", "namespace"); !clusterScoped[kind] && !dnsLabel.MatchString(ns) {
			t.Errorf("%s: metadata.namespace %q is missing or not a DNS label", d, ns)
		}
		checkKeys(t, d, d.node, "")

		spec := podSpec(d)
		if spec == nil {
			continue
		}
		sel, _ := get(d.value, "spec", "selector", "matchLabels").(map[string]any)
		labels, _ := get(d.value, "spec", "template", "metadata", "labels").(map[string]any)
		if len(sel) == 0 {
			t.Errorf("%s: no spec.selector.matchLabels", d)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s: selector %s=%v does not select the pod template (labels %v)", d, k, v, labels)
			}
		}
		volumes := map[string]bool{}
		for _, v := range list(spec, "volumes") {
			volumes[str(v, "name")] = true
		}
		for _, group := range []string{"initContainers", "containers"} {
			for _, c := range list(spec, group) {
				name := str(c, "name")
				if !dnsLabel.MatchString(name) || str(c, "image") == "" {
					t.Errorf("%s: %s entry %q needs a DNS-label name and an image", d, group, name)
				}
				for _, r := range []string{"cpu", "memory"} {
					if get(c, "resources", "requests", r) == nil {
						t.Errorf("%s: container %s has no resources.requests.%s", d, name, r)
					}
				}
				if get(c, "resources", "limits", "memory") == nil {
					t.Errorf("%s: container %s has no resources.limits.memory", d, name)
				}
				if get(c, "securityContext", "allowPrivilegeEscalation") != false {
					t.Errorf("%s: container %s does not set allowPrivilegeEscalation: false", d, name)
				}
				for _, m := range list(c, "volumeMounts") {
					if !volumes[str(m, "name")] {
						t.Errorf("%s: container %s mounts undefined volume %q", d, name, str(m, "name"))
					}
				}
				for _, e := range list(c, "env") {
					if !envName.MatchString(str(e, "name")) {
						t.Errorf("%s: container %s: bad env name %q", d, name, str(e, "name"))
					}
				}
			}
		}
	}
}

// find returns the one document of kind named name.
func find(t *testing.T, docs []document, kind, name string) document {
	t.Helper()
	for _, d := range docs {
		if str(d.value, "kind") == kind && str(d.value, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %q under deploy/kubernetes", kind, name)
	return document{}
}

func parseConfig(t *testing.T, where string, data string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(data))
	if err != nil {
		t.Fatalf("%s: credsidecar config does not pass config.Parse:\n%v", where, err)
	}
	return cfg
}

func container(t *testing.T, d document, name string) any {
	t.Helper()
	for _, c := range list(podSpec(d), "containers") {
		if str(c, "name") == name {
			return c
		}
	}
	t.Fatalf("%s: no container %q", d, name)
	return nil
}

func TestDaemonSetAndConfigMap(t *testing.T) {
	docs := kubeDocs(t)
	cm := find(t, docs, "ConfigMap", "credsidecar-config")
	cfg := parseConfig(t, cm.String(), str(cm.value, "data", "config.yaml"))
	ds := find(t, docs, "DaemonSet", "credsidecar")
	spec := podSpec(ds)
	if get(spec, "hostNetwork") != true {
		t.Errorf("%s: hostNetwork must be true: pods reach the node's sidecar", ds)
	}
	if str(spec, "dnsPolicy") != "ClusterFirstWithHostNet" {
		t.Errorf("%s: dnsPolicy should be ClusterFirstWithHostNet with hostNetwork", ds)
	}
	c := container(t, ds, "credsidecar")
	args := list(c, "args")
	cfgPath := ""
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			cfgPath, _ = args[i+1].(string)
		}
	}
	if cfgPath == "" {
		t.Fatalf("%s: credsidecar args %v have no --config", ds, args)
	}

	// The config is the ConfigMap, mounted as a directory: subPath mounts
	// never see updates, and the hot reload would have nothing to follow.
	var vol string
	for _, v := range list(spec, "volumes") {
		if str(v, "configMap", "name") == "credsidecar-config" {
			vol = str(v, "name")
		}
	}
	mounted := false
	for _, m := range list(c, "volumeMounts") {
		if str(m, "name") != vol {
			continue
		}
		mounted = true
		if get(m, "subPath") != nil {
			t.Errorf("%s: the config volume uses subPath: updates would never reach the pod", ds)
		}
		if want := path.Join(str(m, "mountPath"), "config.yaml"); want != cfgPath {
			t.Errorf("%s: --config %s is not the ConfigMap's config.yaml (mounted at %s)", ds, cfgPath, want)
		}
	}
	if !mounted {
		t.Errorf("%s: the ConfigMap credsidecar-config is not mounted into the credsidecar container", ds)
	}

	// Secret files the sidecar reads pass its own check (config's
	// insecureFile): owner-only modes, and the group read the kubelet
	// adds for fsGroup is the sidecar's own group.
	secretVolumes := 0
	for _, v := range list(spec, "volumes") {
		for _, kind := range []string{"secret", "projected"} {
			src := get(v, kind)
			if src == nil {
				continue
			}
			secretVolumes++
			mode, ok := get(src, "defaultMode").(int)
			if !ok {
				t.Errorf("%s: %s volume %s has no defaultMode: the kubelet's 0644 lets every user read it, and credsidecar refuses it", ds, kind, str(v, "name"))
				continue
			}
			if mode != 0o400 {
				t.Errorf("%s: %s volume %s has defaultMode %#o, want 0400", ds, kind, str(v, "name"), mode)
			}
		}
	}
	if secretVolumes == 0 {
		t.Errorf("%s: no secret volume for the config's file: references", ds)
	}
	fsGroup, runAsGroup := get(spec, "securityContext", "fsGroup"), get(c, "securityContext", "runAsGroup")
	if fsGroup == nil || fsGroup != runAsGroup {
		t.Errorf("%s: pod fsGroup %v must be the sidecar's runAsGroup %v: the kubelet makes secret files readable by that group", ds, fsGroup, runAsGroup)
	}

	// Probes reach the admin listener: on the node's loopback (hostNetwork).
	adminHost, adminPort, err := net.SplitHostPort(cfg.AdminListen)
	if err != nil {
		t.Fatal(err)
	}
	for probe, p := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		h := get(c, probe, "httpGet")
		if h == nil {
			t.Errorf("%s: no %s.httpGet", ds, probe)
			continue
		}
		if str(h, "host") != adminHost || fmt.Sprint(get(h, "port")) != adminPort || str(h, "path") != p {
			t.Errorf("%s: %s probes %s:%v%s, want %s:%s%s (admin_listen)", ds, probe, str(h, "host"), get(h, "port"), str(h, "path"), adminHost, adminPort, p)
		}
	}
	if u := get(c, "securityContext", "runAsNonRoot"); u != true {
		t.Errorf("%s: the sidecar must run as non-root", ds)
	}
	// Listening as non-root without capabilities needs a port above 1023.
	for _, l := range cfg.Listen {
		ap := netip.MustParseAddrPort(l)
		if ap.Port() < 1024 {
			t.Errorf("%s: listen %s needs NET_BIND_SERVICE, which a non-root container does not get", cm, l)
		}
		if !ap.Addr().IsLinkLocalUnicast() {
			t.Errorf("%s: listen %s: pods reach the node through a link-local address", cm, l)
		}
	}
}

// The example workload's token is one the ConfigMap trusts, for the role its
// FULL_URI asks for, at an address the sidecar listens on.
func TestWorkloadIsTrusted(t *testing.T) {
	docs := kubeDocs(t)
	cfg := parseConfig(t, "ConfigMap", str(find(t, docs, "ConfigMap", "credsidecar-config").value, "data", "config.yaml"))
	dep := find(t, docs, "Deployment", "reports-app")
	c := container(t, dep, "app")
	env := map[string]string{}
	for _, e := range list(c, "env") {
		env[str(e, "name")] = str(e, "value")
	}
	u, err := url.Parse(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
	if err != nil || u.Scheme != "http" {
		t.Fatalf("%s: AWS_CONTAINER_CREDENTIALS_FULL_URI %q is not an http URL", dep, env["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
	}
	if !slices.Contains(cfg.Listen, u.Host) {
		t.Errorf("%s: FULL_URI host %s is not a listen address of the sidecar %v", dep, u.Host, cfg.Listen)
	}
	role, ok := strings.CutPrefix(u.Path, "/role/")
	if !ok {
		t.Errorf("%s: FULL_URI path %s is not /role/NAME", dep, u.Path)
	}

	// The token file is a projected service-account token for the
	// audience the ConfigMap's identity provider accepts, and the pod's
	// service account is a subject a client with that role matches.
	tokenFile := env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]
	var audience string
	var expiry int
	for _, m := range list(c, "volumeMounts") {
		for _, v := range list(podSpec(dep), "volumes") {
			if str(v, "name") != str(m, "name") {
				continue
			}
			for _, src := range list(v, "projected", "sources") {
				sat := get(src, "serviceAccountToken")
				if sat != nil && path.Join(str(m, "mountPath"), str(sat, "path")) == tokenFile {
					audience = str(sat, "audience")
					expiry, _ = get(sat, "expirationSeconds").(int)
				}
			}
		}
	}
	if audience == "" {
		t.Fatalf("%s: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s is not a projected serviceAccountToken", dep, tokenFile)
	}
	if expiry < 600 || expiry > 3600 {
		t.Errorf("%s: the token's expirationSeconds %d: keep it short (600..3600)", dep, expiry)
	}
	sa := str(podSpec(dep), "serviceAccountName")
	subject := "system:serviceaccount:" + str(dep.value, "metadata", "namespace") + ":" + sa
	for _, cl := range cfg.Clients {
		m := cl.Match.JWT
		if m == nil {
			continue
		}
		p, ok := cfg.IdentityProviderByName(m.Provider)
		if !ok || !slices.Contains(p.Audiences, audience) {
			continue
		}
		if ok, _ := path.Match(m.Subject, subject); ok || m.Subject == subject {
			if !slices.Contains(cl.Roles, role) {
				t.Errorf("client %s (%s) may not have role %q: roles %v", cl.Name, subject, role, cl.Roles)
			}
			return
		}
	}
	t.Errorf("no jwt client of the ConfigMap matches %s with audience %s", subject, audience)
}

// composeServiceKeys are the service keys the Compose example may use.
var composeServiceKeys = setOf(`image build command entrypoint environment volumes sysctls
	cap_add cap_drop read_only security_opt networks depends_on user restart labels group_add`)

func TestComposeExample(t *testing.T) {
	var compose document
	for _, d := range loadAll(t) {
		if strings.HasSuffix(d.file, "compose/docker-compose.yaml") {
			compose = d
		}
	}
	if compose.value == nil {
		t.Fatal("examples/compose/docker-compose.yaml not found")
	}
	for k := range compose.value {
		if !strings.HasPrefix(k, "x-") && !setOf("version services networks volumes")[k] {
			t.Errorf("docker-compose.yaml: unknown top-level key %q", k)
		}
	}
	services, _ := compose.value["services"].(map[string]any)
	for name, s := range services {
		for k := range s.(map[string]any) {
			if !composeServiceKeys[k] {
				t.Errorf("docker-compose.yaml: service %s: unknown key %q", name, k)
			}
		}
	}
	data, err := os.ReadFile("../examples/compose/credsidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, "examples/compose/credsidecar.yaml", string(data))

	subnet := netip.MustParsePrefix(str(compose.value, "networks", "creds", "ipam", "config", 0, "subnet"))
	if !subnet.Addr().IsLinkLocalUnicast() {
		t.Errorf("compose network %s is not link-local", subnet)
	}
	addr := func(svc string) netip.Addr {
		a, err := netip.ParseAddr(str(services, svc, "networks", "creds", "ipv4_address"))
		if err != nil || !subnet.Contains(a) {
			t.Fatalf("service %s: ipv4_address %v is not in %s", svc, a, subnet)
		}
		return a
	}
	if side := addr("credsidecar"); !slices.Contains(cfg.Listen, side.String()+":80") {
		t.Errorf("the sidecar's address %s:80 is not in its listen %v", side, cfg.Listen)
	}
	// Apps are trusted by the labels Compose sets on their containers.
	clientOf := func(svc string) string {
		addr(svc)
		labels, _ := services[svc].(map[string]any)["labels"].(map[string]any)
	clients:
		for _, c := range cfg.Clients {
			if c.Match.Container == nil || len(c.Match.Container.Labels) == 0 {
				continue
			}
			for k, v := range c.Match.Container.Labels {
				if got, _ := labels[k].(string); got != v {
					continue clients
				}
			}
			return c.Name
		}
		return ""
	}
	for _, svc := range []string{"web-app", "batch-app"} {
		if c := clientOf(svc); c != svc {
			t.Errorf("%s's labels make it client %q, want %s", svc, c, svc)
		}
		if !slices.Contains(list(services, svc, "cap_drop"), any("NET_RAW")) {
			t.Errorf("%s keeps NET_RAW: it could send packets from another container's address", svc)
		}
	}
	if c := clientOf("untrusted"); c != "" {
		t.Errorf("the untrusted container is trusted as client %q", c)
	}
	// reports-app's token file holds the token whose SHA-256 client
	// reports-app trusts (the sidecar reads no copy of it: a bind mount
	// keeps the checkout's 0644, which its secret-file check refuses).
	var hostTokenFile string
	for _, v := range list(services, "reports-app", "volumes") {
		src, dst, _ := strings.Cut(strings.TrimSuffix(v.(string), ":ro"), ":")
		if dst == str(services, "reports-app", "environment", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
			hostTokenFile = path.Clean(src)
		}
	}
	if hostTokenFile == "" {
		t.Fatal("reports-app's AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is not a mounted file")
	}
	for _, c := range cfg.Clients {
		if c.Match.Token != nil && c.Match.Token.File != "" {
			t.Errorf("client %s reads token file %s: bind mounts keep the checkout's 0644, which the sidecar refuses; trust its sha256", c.Name, c.Match.Token.File)
		}
	}
	tok, err := os.ReadFile(filepath.Join("../examples/compose", hostTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) == 0 || strings.TrimSpace(string(tok)) != string(tok) {
		t.Errorf("%s is empty or ends in whitespace: aws-sdk-go-v2 sends the file's bytes as they are", hostTokenFile)
	}
	sum := sha256.Sum256(tok)
	found := false
	for _, c := range cfg.Clients {
		if c.Match.Token != nil && strings.EqualFold(c.Match.Token.SHA256, hex.EncodeToString(sum[:])) {
			found = c.Name == "reports-app"
		}
	}
	if !found {
		t.Errorf("the SHA-256 of %s is not client reports-app's token", hostTokenFile)
	}
}
