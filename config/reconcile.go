package config

import (
	"fmt"
	"slices"
	"strings"
)

// Restart is one change of a new config that a reload cannot apply: the
// running value stays until the daemon restarts.
type Restart struct {
	// Key is the config key, as the file spells it ("listen", "sts.mode").
	Key string
	// Running and New are the two values, as text.
	Running, New string
}

// String describes the change for a log line.
func (r Restart) String() string { return fmt.Sprintf("%s: %s → %s", r.Key, r.Running, r.New) }

// Reconciled is a new config made ready to apply over a running one.
type Reconciled struct {
	// Config is what to apply: the new config, with the running value of
	// every key listed in Restart. It is nil when the new config must not
	// be applied at all (an sts.mode change: nothing of it fits the running
	// credential source).
	Config *Config
	// Restart lists the changes that need a restart, in a fixed order.
	Restart []Restart
}

// Reconcile decides what of next a daemon running on running can apply. A
// reload rebinds no listener, reopens no audit log and rebuilds no aws-mode
// source, so those keys keep their running values: listen, admin_listen,
// sts.local.listen, audit_log and, in aws mode, sts.endpoint, sts.profile
// and region (the source's own region; IMDS answers with the region the
// source uses). An sts.mode change applies nothing. Reconcile is pure: it
// modifies neither argument, and returns next itself when next applies as
// it is.
func Reconcile(running, next *Config) Reconciled {
	var r Reconciled
	note := func(key, old, new string) {
		r.Restart = append(r.Restart, Restart{Key: key, Running: old, New: new})
	}
	if running.STS.Mode != next.STS.Mode {
		note("sts.mode", running.STS.Mode, next.STS.Mode)
		return r
	}
	out := *next
	if !slices.Equal(running.Listen, next.Listen) {
		note("listen", "["+strings.Join(running.Listen, ", ")+"]", "["+strings.Join(next.Listen, ", ")+"]")
		out.Listen = running.Listen
	}
	if running.AdminListen != next.AdminListen {
		note("admin_listen", running.AdminListen, next.AdminListen)
		out.AdminListen = running.AdminListen
	}
	if running.STS.Local.Listen != next.STS.Local.Listen {
		note("sts.local.listen", running.STS.Local.Listen, next.STS.Local.Listen)
		out.STS.Local.Listen = running.STS.Local.Listen
	}
	if running.AuditLog != next.AuditLog {
		note("audit_log", quoted(running.AuditLog), quoted(next.AuditLog))
		out.AuditLog = running.AuditLog
	}
	if next.STS.Mode == ModeAWS {
		if running.STS.Endpoint != next.STS.Endpoint {
			note("sts.endpoint", quoted(running.STS.Endpoint), quoted(next.STS.Endpoint))
			out.STS.Endpoint = running.STS.Endpoint
		}
		if running.STS.Profile != next.STS.Profile {
			note("sts.profile", quoted(running.STS.Profile), quoted(next.STS.Profile))
			out.STS.Profile = running.STS.Profile
		}
		if running.Region != next.Region {
			note("region", running.Region, next.Region)
			out.Region = running.Region
		}
	}
	if len(r.Restart) == 0 {
		r.Config = next
		return r
	}
	r.Config = &out
	return r
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }
