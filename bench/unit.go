package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unitFigures is the cost of recognising callers by systemd unit.
type unitFigures struct {
	OtherProcesses int `json:"other_processes"`
	// SameUID: the other processes run as the load generator's uid (the
	// attestor scans that uid's processes: the worst case); otherwise as
	// nobody (65534), like other services on a host.
	SameUID   bool       `json:"other_processes_same_uid"`
	Cold      comparison `json:"cold_sequence"`
	KeepAlive comparison `json:"keep_alive"`
	// UIDCold is the same cold load against a sidecar whose client is
	// matched by uids: the sock_diag lookup alone (bounded and coalesced
	// by imds), which a unit match also needs.
	UIDCold figures `json:"uid_client_cold_sequence"`
	// PlainCold is the plain sidecar (clients by address) under the same
	// load, in the same rounds: RatioToPlain is what recognising by unit
	// costs over a sidecar that recognises callers for free.
	PlainCold    figures `json:"plain_sidecar_cold_sequence"`
	RatioToPlain float64 `json:"cold_ratio_to_plain_sidecar"`
	// CPUPerSeq is each server's CPU time (user + system, from
	// /proc/PID/stat) per cold sequence, in µs: unlike throughput on a
	// shared machine, it hardly moves with the neighbours' load.
	// IdentifyCPUUs is the unit sidecar's over the uids sidecar's: the CPU
	// attestation costs per new connection.
	CPUPerSeq     cpuFigures `json:"cpu_us_per_sequence"`
	IdentifyCPUUs float64    `json:"identify_cpu_us_per_connection"`
	// IdentifyUs is the extra p50 of a cold sequence over the uids
	// client's: what attestation (the /proc scan, pidfd, cgroup) adds to
	// one new connection.
	IdentifyUs float64 `json:"identify_per_connection_us"`
	Skipped    string  `json:"skipped,omitempty"`
	// Profile is the CPU profile of the sidecar under the cold load
	// (-unit-cpuprofile).
	Profile string `json:"cpu_profile,omitempty"`
}

// unitRun measures a sidecar whose client is matched by systemd_unit: the
// bench process moves itself into a cgroup named like a unit
// (system.slice/credsidecar-bench.service, v1 name=systemd or v2) while
// `others` other processes of its uid run (the attestor scans that uid's
// /proc/PID/fd), then runs the cold SDK sequence and keep-alive load
// against it and against the bare server. Needs root; skipped otherwise.
func unitRun(ctx context.Context, o *options, bin, dir string, bare, plain *process, rep *report, sameUID bool, progress func(string, ...any)) error {
	const others = 1000
	u := &unitFigures{OtherProcesses: others, SameUID: sameUID}
	if sameUID {
		rep.UnitSameUID = u
	} else {
		rep.Unit = u
	}
	mnt := "/sys/fs/cgroup/systemd"
	if _, err := os.Stat(mnt + "/cgroup.procs"); err != nil {
		mnt = "/sys/fs/cgroup"
	}
	if os.Geteuid() != 0 {
		u.Skipped = "needs root (to place the load generator in a unit's cgroup)"
		return nil
	}
	orig, err := ownCgroup()
	if err != nil {
		u.Skipped = err.Error()
		return nil
	}
	side, err := startSidecar(ctx, bin, dir, fmt.Sprintf("sidecar-unit-%v", sameUID), unitConfig(`systemd_unit: credsidecar-bench.service`), o.unitProfile != "")
	if err != nil {
		return err
	}
	defer side.stop()
	uidSide, err := startSidecar(ctx, bin, dir, fmt.Sprintf("sidecar-uid-%v", sameUID), unitConfig(fmt.Sprintf("uids: [%d]", os.Geteuid())), false)
	if err != nil {
		return err
	}
	defer uidSide.stop()
	progress("starting %d other processes", others)
	var sleeps []*exec.Cmd
	defer func() {
		for _, c := range sleeps {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for range others {
		c := exec.Command("sleep", "3600")
		if !sameUID {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		if err := c.Start(); err != nil {
			return fmt.Errorf("start other processes: %w", err)
		}
		sleeps = append(sleeps, c)
	}
	cg := filepath.Join(mnt, "system.slice", "credsidecar-bench.service")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		u.Skipped = fmt.Sprintf("cannot make a cgroup: %v", err)
		return nil
	}
	defer os.Remove(cg)
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), pid, 0); err != nil {
		u.Skipped = fmt.Sprintf("cannot join the cgroup: %v", err)
		return nil
	}
	defer os.WriteFile(filepath.Join(mnt, orig, "cgroup.procs"), pid, 0)

	token, err := imdsToken(side.addr)
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+side.addr+"/latest/meta-data/iam/security-credentials/app", nil)
	req.Header.Set("X-aws-ec2-metadata-token", token)
	if _, err := fetch(req); err != nil {
		return fmt.Errorf("the unit-matched client was refused: %w", err)
	}
	each := max(o.coldDuration/time.Duration(o.rounds), 200*time.Millisecond)
	var runs [4][]*result // bare, unit, uids, plain sidecar
	var cpu [4]time.Duration
	servers := [4]*process{bare, side, uidSide, plain}
	for round := range o.rounds {
		progress("unit-matched cold sequences round %d/%d, %s each", round+1, o.rounds, each)
		order := []int{0, 1, 2, 3}
		if round%2 == 1 {
			order = []int{3, 2, 1, 0}
		}
		for _, i := range order {
			before := cpuTime(servers[i].pid())
			runs[i] = append(runs[i], coldSequence(ctx, servers[i].addr, servers[i].addr, o.coldConns, each))
			cpu[i] += cpuTime(servers[i].pid()) - before
		}
	}
	u.Cold = compareRounds(runs[0], runs[1])
	merged := func(rs []*result) *result {
		all := &result{}
		for _, r := range rs {
			all.merge(r)
		}
		return all
	}
	coldBare, coldUnit, coldUID, coldPlain := merged(runs[0]), merged(runs[1]), merged(runs[2]), merged(runs[3])
	perSeq := func(d time.Duration, r *result) float64 {
		if r.Requests == 0 {
			return 0
		}
		return float64(d.Microseconds()) / float64(r.Requests)
	}
	u.CPUPerSeq = cpuFigures{Bare: perSeq(cpu[0], coldBare), Unit: perSeq(cpu[1], coldUnit), UIDs: perSeq(cpu[2], coldUID), Plain: perSeq(cpu[3], coldPlain)}
	u.IdentifyCPUUs = u.CPUPerSeq.Unit - u.CPUPerSeq.UIDs
	u.UIDCold = figuresOf(coldUID)
	u.PlainCold = figuresOf(coldPlain)
	if u.PlainCold.RPS > 0 {
		u.RatioToPlain = u.Cold.Sidecar.RPS / u.PlainCold.RPS
	}
	u.IdentifyUs = u.Cold.Sidecar.P50us - u.UIDCold.P50us
	credReq := func(addr string) []byte {
		return []byte("GET /latest/meta-data/iam/security-credentials/app HTTP/1.1\r\nHost: " + addr +
			"\r\nX-aws-ec2-metadata-token: " + token + "\r\n\r\n")
	}
	progress("unit-matched keep-alive, %s each", each)
	bareTok, err := imdsToken(bare.addr)
	if err != nil {
		return err
	}
	bareReq := []byte(strings.Replace(string(credReq(bare.addr)), token, bareTok, 1))
	u.KeepAlive = compare(keepAlive(ctx, bare.addr, bareReq, o.conns, each), keepAlive(ctx, side.addr, credReq(side.addr), o.conns, each))
	if o.unitProfile != "" {
		file := o.unitProfile + ".other-uid"
		if sameUID {
			file = o.unitProfile + ".same-uid"
		}
		if err := profile(ctx, side, file, o.coldDuration, progress, func(d time.Duration) {
			coldSequence(ctx, side.addr, side.addr, o.coldConns, d)
		}); err != nil {
			return err
		}
		u.Profile = file
	}
	return ctx.Err()
}

// cpuFigures are CPU µs per cold sequence of each server.
type cpuFigures struct {
	Bare  float64 `json:"bare"`
	Plain float64 `json:"plain_sidecar"`
	UIDs  float64 `json:"uids_client"`
	Unit  float64 `json:"systemd_unit_client"`
}

// ownCgroup is this process's path in the hierarchy systemd tracks by.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var unified string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "name=systemd" {
			return parts[2], nil
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
	}
	if unified == "" {
		return "", fmt.Errorf("no name=systemd or unified cgroup")
	}
	return unified, nil
}

func unitConfig(match string) string {
	return `listen: ["127.0.0.1:0"]
admin_listen: "127.0.0.1:0"
region: us-east-1
imds: { tokens: required }
sts:
  mode: local
  max_qps: 100000
  local: { listen: "127.0.0.1:0", account_id: "000000000000", caller: credsidecar }
roles:
  - name: app
    arn: arn:aws:iam::000000000000:role/app
    duration: 1h
    session_name: "bench-{{.Client}}"
clients:
  - name: bench-unit
    match: { ` + match + ` }
    roles: [app]
`
}

func printUnit(w interface{ Write([]byte) (int, error) }, u *unitFigures) {
	if u == nil {
		return
	}
	if u.Skipped != "" {
		fmt.Fprintf(w, "systemd_unit client: skipped (%s)\n\n", u.Skipped)
		return
	}
	whose := "of uid 65534"
	if u.SameUID {
		whose = "of the load generator's own uid: the worst case, all scanned"
	}
	fmt.Fprintf(w, "systemd_unit client (the load generator runs in system.slice/credsidecar-bench.service; %d other processes %s)\n", u.OtherProcesses, whose)
	fmt.Fprintf(w, "  cold SDK sequence   sidecar %8.0f seq/s, bare %8.0f seq/s: ratio %.3f (goal >= 0.80); p50 %s vs %s\n",
		u.Cold.Sidecar.RPS, u.Cold.Bare.RPS, u.Cold.Ratio, fmtDur(u.Cold.Sidecar.P50us), fmtDur(u.Cold.Bare.P50us))
	printSpread(w, "cold sequence", u.Cold.RoundRatios)
	fmt.Fprintf(w, "  keep-alive          sidecar %8.0f req/s, bare %8.0f req/s: ratio %.3f (attested once per connection)\n",
		u.KeepAlive.Sidecar.RPS, u.KeepAlive.Bare.RPS, u.KeepAlive.Ratio)
	fmt.Fprintf(w, "  plain sidecar, same load %8.0f seq/s: the unit client makes %.3f of it\n", u.PlainCold.RPS, u.RatioToPlain)
	fmt.Fprintf(w, "  uids client, same load %8.0f seq/s, p50 %s (sock_diag alone, coalesced under load)\n", u.UIDCold.RPS, fmtDur(u.UIDCold.P50us))
	if u.IdentifyUs >= 0 {
		fmt.Fprintf(w, "  attestation per new connection: %s (cold p50 over the uids client's)\n", fmtDur(u.IdentifyUs))
	} else {
		// A difference of two medians under load: below zero it is noise,
		// not a negative cost.
		fmt.Fprintf(w, "  attestation per new connection: within noise (cold p50 %s below the uids client's)\n", fmtDur(-u.IdentifyUs))
	}
	fmt.Fprintf(w, "  CPU per cold sequence: bare %.0f µs, plain sidecar %.0f µs, uids client %.0f µs, unit client %.0f µs: attestation %.0f µs of CPU per new connection\n\n",
		u.CPUPerSeq.Bare, u.CPUPerSeq.Plain, u.CPUPerSeq.UIDs, u.CPUPerSeq.Unit, u.IdentifyCPUUs)
}
