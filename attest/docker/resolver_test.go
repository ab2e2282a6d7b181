package docker

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeEngine is a scripted Engine API on a unix socket.
type fakeEngine struct {
	version string
	mu      sync.Mutex
	ctrs    map[string]containerJSON
	images  map[string]imageJSON
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/_ping" {
		w.Header().Set("Api-Version", f.version)
		w.Write([]byte("OK"))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v"+min(f.version, maxAPI)+"/")
	if !ok {
		http.Error(w, "bad version in "+r.URL.Path, http.StatusBadRequest)
		return
	}
	switch {
	case rest == "containers/json":
		var out []listEntry
		for id, c := range f.ctrs {
			if c.State.Running {
				out = append(out, listEntry{ID: id})
			}
		}
		json.NewEncoder(w).Encode(out)
	case strings.HasPrefix(rest, "containers/"):
		c, ok := f.ctrs[strings.TrimSuffix(strings.TrimPrefix(rest, "containers/"), "/json")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(c)
	case strings.HasPrefix(rest, "images/"):
		im, ok := f.images[strings.TrimSuffix(strings.TrimPrefix(rest, "images/"), "/json")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(im)
	default:
		http.NotFound(w, r)
	}
}

func ctr(id, name, ip string, labels map[string]string) containerJSON {
	var c containerJSON
	c.ID, c.Name, c.Image = id, "/"+name, "sha256:img"
	c.State.Running = true
	c.Config.Image = "example/web:1"
	c.Config.Labels = labels
	c.NetworkSettings.Networks = map[string]struct {
		IPAddress         string `json:"IPAddress"`
		GlobalIPv6Address string `json:"GlobalIPv6Address"`
	}{"creds": {IPAddress: ip}}
	return c
}

func start(t *testing.T, f *fakeEngine) *Resolver {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r, err := New(Options{Host: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	r.procNet = false // the fake's containers have no processes
	return r
}

var sidecar = netip.MustParseAddrPort("169.254.170.2:80")

func from(ip string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(ip), 40000) }

func TestResolve(t *testing.T) {
	img := imageJSON{ID: "sha256:img", RepoDigests: []string{"example/web@sha256:abc"}}
	img.Config.Labels = map[string]string{"credsidecar.client": "web", "maintainer": "x"}
	f := &fakeEngine{version: "1.41", images: map[string]imageJSON{"sha256:img": img}, ctrs: map[string]containerJSON{
		"own":       ctr("own", "web-1", "169.254.170.10", map[string]string{"credsidecar.client": "batch", "maintainer": "x"}),
		"inherited": ctr("inherited", "web-2", "169.254.170.11", map[string]string{"credsidecar.client": "web", "maintainer": "x"}),
		"twin-a":    ctr("twin-a", "a", "169.254.170.12", nil),
		"twin-b":    ctr("twin-b", "b", "169.254.170.12", nil),
	}}
	shared := ctr("shared", "sidecarred", "169.254.170.13", nil)
	shared.HostConfig.NetworkMode = "container:own"
	f.ctrs["shared"] = shared
	r := start(t, f)

	c, err := r.Resolve(sidecar, from("169.254.170.10"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "web-1" || c.Labels["credsidecar.client"] != "batch" || c.ImageID != "sha256:img" || c.Image != "example/web:1" || c.RepoDigests[0] != "example/web@sha256:abc" {
		t.Errorf("own labels: %+v", c)
	}
	if _, ok := c.Labels["maintainer"]; ok {
		t.Errorf("a label only inherited from the image counted: %v", c.Labels)
	}
	c, err = r.Resolve(sidecar, from("169.254.170.11"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Labels["credsidecar.client"]; ok {
		t.Errorf("the image's credsidecar.client label counted as the container's: %v", c.Labels)
	}
	if _, err := r.Resolve(sidecar, from("169.254.170.12")); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("an address two containers claim: %v, want ErrAmbiguous", err)
	}
	if _, err := r.Resolve(sidecar, from("169.254.170.13")); !errors.Is(err, errSharedNet) {
		t.Errorf("a container in another's network namespace: %v, want errSharedNet", err)
	}

	// The map now knows "own" at .10; it is removed and replaced on the
	// same address before any event arrives.
	r.up.Store(true)
	f.mu.Lock()
	delete(f.ctrs, "own")
	f.ctrs["new"] = ctr("new", "web-3", "169.254.170.10", map[string]string{"credsidecar.client": "web-new"})
	f.mu.Unlock()
	c, err = r.Resolve(sidecar, from("169.254.170.10"))
	if err != nil || c.ID != "new" || c.Labels["credsidecar.client"] != "web-new" {
		t.Fatalf("replaced container: %+v, %v; want the new one", c, err)
	}
	f.mu.Lock()
	delete(f.ctrs, "new")
	f.mu.Unlock()
	if _, err := r.Resolve(sidecar, from("169.254.170.10")); !errors.Is(err, ErrUnknown) {
		t.Errorf("after removal: %v, want ErrUnknown", err)
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		server, want string
		fails        bool
	}{
		{"1.41", "1.41", false}, // Debian's dockerd
		{"1.51", "1.47", false}, // current Docker: we ask for what we speak
		{"1.30", "", true},
	} {
		f := &fakeEngine{version: tc.server}
		r := start(t, f)
		err := r.c.negotiate(t.Context())
		if (err != nil) != tc.fails || r.c.ver() != tc.want {
			t.Errorf("server %s: version %q, %v; want %q (fails %v)", tc.server, r.c.ver(), err, tc.want, tc.fails)
		}
	}
}

func TestUnavailable(t *testing.T) {
	r, err := New(Options{Host: "unix://" + filepath.Join(t.TempDir(), "none.sock")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(sidecar, from("169.254.170.10")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no dockerd: %v, want ErrUnavailable", err)
	}
	if _, err := New(Options{Host: "tcp://127.0.0.1:2375"}); err == nil {
		t.Error("a tcp docker host was accepted")
	}
}

func TestProcAddr(t *testing.T) {
	// /proc/net/tcp spells 169.254.170.10:40000 as 0AAAFEA9:9C40.
	if got := procAddr(netip.MustParseAddrPort("169.254.170.10:40000")); got != "0AAAFEA9:9C40" {
		t.Errorf("procAddr = %s", got)
	}
}
