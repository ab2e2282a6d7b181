package config

import (
	"reflect"
	"testing"
)

func reconcileBase(mode string) *Config {
	return &Config{
		Listen: []string{"127.0.0.1:8169"}, AdminListen: "127.0.0.1:8170", Region: "us-east-1", AuditLog: "/var/log/a.jsonl",
		STS:   STS{Mode: mode, Endpoint: "https://sts.example", Profile: "src", MaxQPS: 10, Local: Local{Listen: "127.0.0.1:8171", AccountID: "000000000000"}},
		Roles: []Role{{Name: "app", ARN: "arn:aws:iam::000000000000:role/app"}},
	}
}

func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    string
		edit    func(*Config)
		restart []Restart
		// applied checks the config to apply (not called when nil is expected).
		applied func(t *testing.T, running, next, got *Config)
		nothing bool
	}{
		{
			name: "identical", mode: ModeLocal, edit: func(*Config) {},
			applied: func(t *testing.T, _, next, got *Config) { sameConfig(t, got, next) },
		},
		{
			name: "reloadable keys apply as they are", mode: ModeLocal,
			edit: func(c *Config) {
				c.Region, c.STS.MaxQPS, c.STS.Local.AccountID = "eu-west-3", 5, "111111111111"
				c.Roles = append(c.Roles, Role{Name: "other"})
				c.STS.Endpoint, c.STS.Profile = "ignored in local mode", "also"
			},
			applied: func(t *testing.T, _, next, got *Config) { sameConfig(t, got, next) },
		},
		{
			name: "listener addresses stay", mode: ModeLocal,
			edit: func(c *Config) {
				c.Listen = []string{"127.0.0.1:9000", "169.254.169.254:80"}
				c.AdminListen, c.STS.Local.Listen, c.Region = "127.0.0.1:9001", "127.0.0.1:9002", "eu-west-3"
			},
			restart: []Restart{
				{"listen", "[127.0.0.1:8169]", "[127.0.0.1:9000, 169.254.169.254:80]"},
				{"admin_listen", "127.0.0.1:8170", "127.0.0.1:9001"},
				{"sts.local.listen", "127.0.0.1:8171", "127.0.0.1:9002"},
			},
			applied: func(t *testing.T, running, next, got *Config) {
				if !reflect.DeepEqual(got.Listen, running.Listen) || got.AdminListen != running.AdminListen || got.STS.Local.Listen != running.STS.Local.Listen {
					t.Errorf("listeners not carried over: %v %s %s", got.Listen, got.AdminListen, got.STS.Local.Listen)
				}
				if got.Region != "eu-west-3" {
					t.Errorf("the rest is applied: region %s", got.Region)
				}
			},
		},
		{
			name: "audit log stays", mode: ModeLocal,
			edit:    func(c *Config) { c.AuditLog = "" },
			restart: []Restart{{"audit_log", `"/var/log/a.jsonl"`, `""`}},
			applied: func(t *testing.T, running, _, got *Config) {
				if got.AuditLog != running.AuditLog {
					t.Errorf("audit_log %q", got.AuditLog)
				}
			},
		},
		{
			name: "aws source settings stay", mode: ModeAWS,
			edit: func(c *Config) {
				c.STS.Endpoint, c.STS.Profile, c.Region, c.STS.MaxQPS = "https://sts.eu-west-3.amazonaws.com", "", "eu-west-3", 3
			},
			restart: []Restart{
				{"sts.endpoint", `"https://sts.example"`, `"https://sts.eu-west-3.amazonaws.com"`},
				{"sts.profile", `"src"`, `""`},
				{"region", "us-east-1", "eu-west-3"},
			},
			applied: func(t *testing.T, running, _, got *Config) {
				if got.STS.Endpoint != running.STS.Endpoint || got.STS.Profile != running.STS.Profile || got.Region != running.Region {
					t.Errorf("aws source settings not carried over: %+v %s", got.STS, got.Region)
				}
				if got.STS.MaxQPS != 3 {
					t.Errorf("max_qps reloads: %v", got.STS.MaxQPS)
				}
			},
		},
		{
			name: "aws mode: the rest applies", mode: ModeAWS,
			edit:    func(c *Config) { c.Roles = nil },
			applied: func(t *testing.T, _, next, got *Config) { sameConfig(t, got, next) },
		},
		{
			name: "sts.mode change applies nothing", mode: ModeLocal,
			edit:    func(c *Config) { c.STS.Mode, c.Listen = ModeAWS, []string{"127.0.0.1:1"} },
			restart: []Restart{{"sts.mode", ModeLocal, ModeAWS}},
			nothing: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			running, next := reconcileBase(tc.mode), reconcileBase(tc.mode)
			tc.edit(next)
			runningBefore, nextBefore := deepCopy(running), deepCopy(next)
			got := Reconcile(running, next)
			if !reflect.DeepEqual(got.Restart, tc.restart) {
				t.Errorf("restart\n got %v\nwant %v", got.Restart, tc.restart)
			}
			if tc.nothing {
				if got.Config != nil {
					t.Fatalf("applied %+v; want nothing", got.Config)
				}
			} else {
				if got.Config == nil {
					t.Fatal("nothing to apply")
				}
				tc.applied(t, running, next, got.Config)
			}
			if !reflect.DeepEqual(running, runningBefore) || !reflect.DeepEqual(next, nextBefore) {
				t.Error("Reconcile modified its arguments")
			}
		})
	}
}

// sameConfig asserts that Reconcile handed next on as it is.
func sameConfig(t *testing.T, got, next *Config) {
	t.Helper()
	if got != next {
		t.Errorf("got a copy; want next itself")
	}
}

// deepCopy copies the parts of c that the table edits.
func deepCopy(c *Config) *Config {
	out := *c
	out.Listen = append([]string(nil), c.Listen...)
	out.Roles = append([]Role(nil), c.Roles...)
	return &out
}

func TestRestartString(t *testing.T) {
	if got := (Restart{"listen", "[a]", "[b]"}).String(); got != "listen: [a] → [b]" {
		t.Fatal(got)
	}
}
