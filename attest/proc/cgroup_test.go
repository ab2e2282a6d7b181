package proc

import "testing"

// Captured /proc/PID/cgroup contents.
const (
	v1 = `12:pids:/system.slice/billing.service
11:memory:/system.slice/billing.service
9:name=systemd:/system.slice/billing.service
0::/
`
	hybrid = `11:cpu,cpuacct:/system.slice/billing.service
1:name=systemd:/system.slice/billing.service
0::/system.slice/billing.service
`
	v2        = "0::/system.slice/billing.service\n"
	cgroupNS  = "0::/../../system.slice/other.service\n"
	v1NoNames = "4:memory:/x\n"
)

func TestCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
		err              bool
	}{
		{"v1 name=systemd", v1, "/system.slice/billing.service", false},
		{"hybrid prefers name=systemd", hybrid, "/system.slice/billing.service", false},
		{"v2 unified", v2, "/system.slice/billing.service", false},
		{"outside the cgroup namespace", cgroupNS, "", true},
		{"no systemd hierarchy", v1NoNames, "", true},
		{"v1 in a container's cgroup namespace", "9:name=systemd:/\n0::/\n", "/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CgroupPath([]byte(tc.data))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("CgroupPath = %q, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestRootAndRelative(t *testing.T) {
	for _, tc := range []struct{ pid1, path, want string }{
		{"/init.scope", "/system.slice/a.service", "/system.slice/a.service"},
		{"/", "/system.slice/a.service", "/system.slice/a.service"},
		// nspawn on cgroup v1 without a cgroup namespace: the container's
		// systemd lives in the machine's subtree.
		{"/machine.slice/machine-ci.scope/init.scope", "/machine.slice/machine-ci.scope/system.slice/billing.service", "/system.slice/billing.service"},
		{"/machine.slice/machine-ci.scope/init.scope", "/machine.slice/machine-ci.scope", "/"},
	} {
		got, ok := Relative(tc.path, SystemdRoot(tc.pid1))
		if !ok || got != tc.want {
			t.Errorf("Relative(%q, root of %q) = %q, %v; want %q", tc.path, tc.pid1, got, ok, tc.want)
		}
	}
	if _, ok := Relative("/machine.slice/machine-cix.scope/x.service", "/machine.slice/machine-ci.scope"); ok {
		t.Error("a sibling prefix counted as below the root")
	}
	if _, ok := Relative("/system.slice/a.service", "/machine.slice/machine-ci.scope"); ok {
		t.Error("a path outside the root counted as below it")
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct{ rel, unit, user string }{
		{"/system.slice/billing.service", "billing.service", ""},
		{"/system.slice/billing.service/worker", "billing.service", ""},
		{"/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", ""},
		{"/init.scope", "init.scope", ""},
		// A user's manager and its units: systemctl --user start billing.service.
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/billing.service", "user@1000.service", "billing.service"},
		{"/user.slice/user-1000.slice/user@1000.service/billing.service", "user@1000.service", "billing.service"},
		{"/user.slice/user-1000.slice/session-3.scope", "session-3.scope", ""},
		// Below a Delegate=yes unit, cgroups named like units belong to it.
		{"/system.slice/docker.service/system.slice/billing.service", "docker.service", ""},
		{"/system.slice/runner.service/billing.service", "runner.service", ""},
		// A machine's scope holds everything of the machine.
		{"/machine.slice/machine-ci.scope/system.slice/billing.service", "machine-ci.scope", ""},
		// Not units.
		{"/", "", ""},
		{"/system.slice", "", ""},
		{"/weird/billing.service", "", ""},
		{"/system.slice/ev il.service", "", ""},
		{"/user.slice/user-1000.slice/user@1000.service", "user@1000.service", ""},
		{"/user.slice/user@x.service/billing.service", "user@x.service", ""},
	} {
		u, uu := Units(tc.rel)
		if u != tc.unit || uu != tc.user {
			t.Errorf("Units(%q) = %q, %q; want %q, %q", tc.rel, u, uu, tc.unit, tc.user)
		}
	}
}
