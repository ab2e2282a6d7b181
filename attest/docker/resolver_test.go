package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEngine is a scripted Engine API on a unix socket.
type fakeEngine struct {
	version string
	// listDelay slows each list down (a busy dockerd with many containers).
	listDelay time.Duration
	calls     atomic.Int64 // requests other than /_ping
	mu        sync.Mutex
	ctrs      map[string]containerJSON
	images    map[string]imageJSON
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/_ping" {
		f.calls.Add(1)
	}
	if strings.HasSuffix(r.URL.Path, "/containers/json") {
		time.Sleep(f.listDelay)
	}
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

// An unknown address costs a scan of every container, repeated for about
// a second; callers that are not containers (any local user, from any of
// loopback's 16M addresses) must not use up the lookups a known
// container's connection needs.
func TestUnknownCallersDoNotStarveKnownOnes(t *testing.T) {
	img := imageJSON{ID: "sha256:img"}
	f := &fakeEngine{version: "1.41", listDelay: 50 * time.Millisecond, images: map[string]imageJSON{"sha256:img": img},
		ctrs: map[string]containerJSON{"known": ctr("known", "web", "169.254.170.10", nil)}}
	r := start(t, f)
	r.wait = 300 * time.Millisecond
	if err := r.c.negotiate(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.refresh(t.Context(), "known")
	r.up.Store(true) // the map is kept: "known" is in it

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r.Resolve(sidecar, from(fmt.Sprintf("169.254.171.%d", i+1)))
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for len(r.scans) < cap(r.scans) { // until the unknown callers hold every scan slot
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		if c, err := r.Resolve(sidecar, from("169.254.170.10")); err != nil || c.ID != "known" {
			t.Fatalf("a known container while unknown callers scan: %+v, %v", c, err)
		}
	}
}

// A loopback address is never a container's own: no API work for it.
func TestLoopbackIsNoContainer(t *testing.T) {
	f := &fakeEngine{version: "1.41", ctrs: map[string]containerJSON{"a": ctr("a", "a", "169.254.170.10", nil)}}
	r := start(t, f)
	for _, ip := range []string{"127.0.0.1", "127.3.4.5", "::1"} {
		if _, err := r.Resolve(sidecar, from(ip)); !errors.Is(err, ErrUnknown) {
			t.Errorf("%s: %v, want ErrUnknown", ip, err)
		}
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("loopback callers made %d API calls, want 0", n)
	}
}

// The container's TCP table proves an address only while the container
// holds the connection: a TIME_WAIT entry left by a connection it closed
// is no proof (a spoofer on the bridge can reopen the same 4-tuple once the
// sidecar's end is gone).
func TestTCPTableNeedsALiveConnection(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	caller := netip.MustParseAddrPort(c.LocalAddr().String())
	side := netip.MustParseAddrPort(ln.Addr().String())
	if ok, err := inTCPTable(os.Getpid(), caller, side); !ok || err != nil {
		t.Fatalf("an established connection: %v, %v; want found", ok, err)
	}
	c.Close() // the caller closes first: its end goes to TIME_WAIT
	s.Read(make([]byte, 1))
	s.Close()
	want := procAddr(caller) + " " + procAddr(side) + " 06"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/self/net/tcp")
		if strings.Contains(string(b), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the caller's end never reached TIME_WAIT")
		}
	}
	if ok, _ := inTCPTable(os.Getpid(), caller, side); ok {
		t.Error("a TIME_WAIT entry counted as the container holding the connection")
	}
}

// Where the sidecar shares the containers' PID namespace, a container
// whose pid is not its process (it exited; the number may be reused) has
// no TCP table to prove its address: fail closed, not skip the check.
func TestSpoofCheckFailsClosed(t *testing.T) {
	c := ctr("c0ffee-not-in-any-cgroup", "web", "169.254.170.10", nil)
	c.State.Pid = 1 // pid 1's cgroup does not name this id
	f := &fakeEngine{version: "1.41", images: map[string]imageJSON{"sha256:img": {ID: "sha256:img"}},
		ctrs: map[string]containerJSON{c.ID: c}}
	r := start(t, f)
	r.procNet = true
	if _, err := r.Resolve(sidecar, from("169.254.170.10")); !errors.Is(err, ErrSpoofed) {
		t.Errorf("a container whose pid is not its process: %v, want ErrSpoofed", err)
	}
}
