//go:build linux

package imds

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

const uidProcessYAML = `
region: ` + testRegion + `
sts: { mode: local, local: { account_id: "` + testAccount + `" } }
roles:
  - {name: app, session_name: "uid-{{.UID}}"}
  - {name: reports}
clients:
  - {name: alice, match: {uids: [4242]}, roles: [app]}
  - {name: admin, match: {uids: [0]}, roles: [reports]}
`

// curlAs runs curl as another uid (the test runs as root) and returns the
// HTTP status and body.
func curlAs(t *testing.T, uid uint32, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("curl", append([]string{"-s", "-m", "5", "-w", "\n%{http_code}"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl as uid %d: %v", uid, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code := 0
	for _, ch := range s[i+1:] {
		code = code*10 + int(ch-'0')
	}
	return code, s[:i]
}

// TestUIDOfOtherProcesses: real client processes running as other uids are
// told apart by sock_diag: each gets its own client's role, a stranger uid
// gets 403, and an IMDSv2 token obtained by one uid is refused for another.
func TestUIDOfOtherProcesses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run client processes as other uids (runs in CI as root)")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl")
	}
	f := startFixture(t, uidProcessYAML, fixtureOpts{uid: SockDiagUID()})
	var ecs struct{ RoleArn string }
	code, body := curlAs(t, 4242, f.url+"/creds")
	if code != 200 || json.Unmarshal([]byte(body), &ecs) != nil || !strings.HasSuffix(ecs.RoleArn, ":role/app") {
		t.Fatalf("uid 4242: %d %s", code, body)
	}
	code, body = curlAs(t, 0, f.url+"/creds")
	if code != 200 || json.Unmarshal([]byte(body), &ecs) != nil || !strings.HasSuffix(ecs.RoleArn, ":role/reports") {
		t.Fatalf("uid 0: %d %s", code, body)
	}
	if code, body = curlAs(t, 4343, f.url+"/creds"); code != http.StatusForbidden {
		t.Fatalf("stranger uid 4343: %d %s", code, body)
	}
	// The session name carries the uid the sidecar saw.
	tok := func(uid uint32) string {
		code, body := curlAs(t, uid, "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", f.url+tokenPath)
		if code != 200 {
			t.Fatalf("token for uid %d: %d %s", uid, code, body)
		}
		return body
	}
	aliceTok := tok(4242)
	if code, body = curlAs(t, 4242, "-H", tokenHeader+": "+aliceTok, f.url+credsPath+"/app"); code != 200 {
		t.Fatalf("uid 4242 with its own token: %d %s", code, body)
	}
	// Replayed by another uid on the same address: refused.
	if code, body = curlAs(t, 0, "-H", tokenHeader+": "+aliceTok, f.url+credsPath+"/reports"); code != http.StatusUnauthorized {
		t.Fatalf("uid 0 replaying uid 4242's token: %d %s", code, body)
	}
	if code, _ = curlAs(t, 4343, "-H", tokenHeader+": "+aliceTok, f.url+credsPath+"/app"); code != http.StatusUnauthorized {
		t.Fatalf("uid 4343 replaying uid 4242's token: %d", code)
	}
}
