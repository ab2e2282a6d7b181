//go:build linux

package imds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/httpserver"
	"github.com/vishvananda/netns"
	"go.uber.org/zap/zaptest"
)

// TestHopLimitThroughRouter builds client ⇄ router ⇄ server in three
// network namespaces (link-local addresses only) and checks EC2's
// semantics: with imds.hop_limit 1 the token response dies at the router,
// so the client's PUT times out; with 2 it arrives; GETs are unaffected.
func TestHopLimitThroughRouter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (runs in CI as root)")
	}
	for _, bin := range []string{"ip", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	srvNS, rtrNS, cliNS := "cshl-s"+suffix, "cshl-r"+suffix, "cshl-c"+suffix
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{srvNS, rtrNS, cliNS} {
		ip("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	ip("link", "add", "s0", "netns", srvNS, "type", "veth", "peer", "r0", "netns", rtrNS)
	ip("link", "add", "c1", "netns", cliNS, "type", "veth", "peer", "r1", "netns", rtrNS)
	in := func(ns string, args ...string) { ip(append([]string{"-n", ns}, args...)...) }
	in(srvNS, "addr", "add", "169.254.210.1/24", "dev", "s0")
	in(rtrNS, "addr", "add", "169.254.210.2/24", "dev", "r0")
	in(rtrNS, "addr", "add", "169.254.211.2/24", "dev", "r1")
	in(cliNS, "addr", "add", "169.254.211.1/24", "dev", "c1")
	for _, l := range [][2]string{{srvNS, "s0"}, {srvNS, "lo"}, {rtrNS, "r0"}, {rtrNS, "r1"}, {cliNS, "c1"}, {cliNS, "lo"}} {
		in(l[0], "link", "set", l[1], "up")
	}
	in(srvNS, "route", "add", "169.254.211.0/24", "via", "169.254.210.2")
	in(cliNS, "route", "add", "169.254.210.0/24", "via", "169.254.211.2")
	if out, err := exec.Command("ip", "netns", "exec", rtrNS, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("enable forwarding: %v: %s", err, out)
	}

	for _, tc := range []struct {
		hops    int
		tokenOK bool
	}{{0, true}, {1, false}, {2, true}} {
		t.Run(fmt.Sprintf("hop_limit_%d", tc.hops), func(t *testing.T) {
			ln := listenInNetns(t, srvNS, "169.254.210.1:0")
			yml := strings.Replace(mainConfigYAML("required"), `listen: ["127.0.0.1:8169"]`,
				fmt.Sprintf("listen: [%q]\nallowed_hosts: [\"169.254.210.1\"]\nimds: {hop_limit: %d, tokens: required}", ln.Addr().String(), tc.hops), 1)
			yml = strings.Replace(yml, "imds: { tokens: required }\n", "", 1)
			yml = strings.Replace(yml, `source_cidrs: ["127.0.0.1/32"]`, `source_cidrs: ["169.254.211.0/24"]`, 1)
			f := buildFixture(t, yml, fixtureOpts{}, nil)
			hs := httpserver.New(httpserver.Options{Handler: f.srv.Handler(), ConnContext: f.srv.ConnContext, Logger: zaptest.NewLogger(t)})
			done := make(chan struct{})
			go func() { defer close(done); hs.Serve(ln) }()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				hs.Shutdown(ctx)
				<-done
			})
			url := "http://" + ln.Addr().String()
			out, err := exec.Command("ip", "netns", "exec", cliNS, "curl", "-sS", "-m", "3", "-X", "PUT",
				"-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", url+tokenPath).CombinedOutput()
			if tc.tokenOK {
				if err != nil {
					t.Fatalf("token PUT beyond one router with hop limit %d failed: %v: %s", tc.hops, err, out)
				}
				creds, err := exec.Command("ip", "netns", "exec", cliNS, "curl", "-sS", "-m", "3",
					"-H", "X-aws-ec2-metadata-token: "+string(out), url+credsPath+"/app").CombinedOutput()
				if err != nil || !strings.Contains(string(creds), `"AccessKeyId":"ASIA`) {
					t.Fatalf("credentials with the token: %v: %s", err, creds)
				}
				return
			}
			var ee *exec.ExitError
			if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 28 {
				t.Fatalf("with hop limit 1 the PUT should time out (curl exit 28), got %v: %s", err, out)
			}
			// The GET path is not hop-limited: the client is told 401, not dropped.
			get, err := exec.Command("ip", "netns", "exec", cliNS, "curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", url+credsPath+"/app").CombinedOutput()
			if err != nil || string(get) != "401" {
				t.Fatalf("token-less GET: %v %s", err, get)
			}
		})
	}
}

// listenInNetns opens a TCP listener inside a named network namespace. The
// socket keeps its namespace after the thread switches back.
func listenInNetns(t *testing.T, name, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	ln, lerr := net.Listen("tcp", addr)
	if err := netns.Set(orig); err != nil {
		panic("cannot return to the original network namespace: " + err.Error())
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
