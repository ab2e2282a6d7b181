package main

import (
	"fmt"
	"io"
	"strings"
)

// goal is one of issue 16's goals for a figure the bench prints: a floor
// (the figure must be at least Limit) or a ceiling (at most Limit).
type goal struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Floor bool    `json:"floor"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
}

// Goals of issue 16, measured against the bare server of the same run.
const (
	goalKeepAliveRatio = 0.95
	goalKeepAliveP99   = 1.10
	goalColdRatio      = 0.95
	goalSingleP50      = 1.05
	goalRSSIdleMiB     = 20
	goalRSSLoadMiB     = 24
	// goalSessionsMiB is for 10 000 clients with 10 000 cached sessions.
	goalSessionsMiB   = 48
	goalSessionsCount = 10000
	goalStartupMs     = 100
)

// goalsOf lists the goals of the figures r holds, each judged with the
// tolerance tol: a floor is met at Limit*(1-tol), a ceiling at
// Limit*(1+tol). tol 0 (the default) judges the goals as written.
func goalsOf(r *report, tol float64) []goal {
	ratio := func(name string, v, limit float64, floor bool) goal {
		return goal{Name: name, Value: v, Limit: limit, Floor: floor, Unit: "x bare"}
	}
	gs := []goal{
		ratio("keep-alive throughput", r.KeepAlive.Ratio, goalKeepAliveRatio, true),
		ratio("keep-alive p99", r.KeepAlive.P99Ratio, goalKeepAliveP99, false),
		ratio("cold SDK sequence throughput", r.Cold.Ratio, goalColdRatio, true),
		ratio("single-connection p50", r.Single.P50Ratio, goalSingleP50, false),
	}
	if r.RSSIdleKB > 0 {
		gs = append(gs, goal{Name: "RSS idle", Value: float64(r.RSSIdleKB) / 1024, Limit: goalRSSIdleMiB, Unit: "MiB"},
			goal{Name: "RSS under keep-alive load", Value: float64(r.RSSLoadKB) / 1024, Limit: goalRSSLoadMiB, Unit: "MiB"})
	}
	if r.Sessions == goalSessionsCount && r.RSSSessKB > 0 {
		gs = append(gs, goal{Name: fmt.Sprintf("RSS, %d clients and cached sessions", goalSessionsCount),
			Value: float64(r.RSSSessKB) / 1024, Limit: goalSessionsMiB, Unit: "MiB"})
	}
	if r.Startup != nil {
		gs = append(gs, goal{Name: "serve ready on the demo config (median)", Value: r.Startup.WallMs, Limit: goalStartupMs, Unit: "ms"})
	}
	for i := range gs {
		g := &gs[i]
		if g.Floor {
			g.Met = g.Value >= g.Limit*(1-tol)
		} else {
			g.Met = g.Value <= g.Limit*(1+tol)
		}
	}
	return gs
}

// missed names the goals not met, for -check's error ("" if none).
func missed(gs []goal) string {
	var out []string
	for _, g := range gs {
		if !g.Met {
			out = append(out, fmt.Sprintf("%s %.3f %s (%s %.2f)", g.Name, g.Value, g.Unit, map[bool]string{true: "floor", false: "ceiling"}[g.Floor], g.Limit))
		}
	}
	return strings.Join(out, "; ")
}

func printGoals(w io.Writer, gs []goal, tol float64) {
	fmt.Fprintf(w, "goals (issue 16")
	if tol > 0 {
		fmt.Fprintf(w, "; judged with -tolerance %.2f", tol)
	}
	fmt.Fprintf(w, ")\n")
	for _, g := range gs {
		op, verdict := "<=", "met"
		if g.Floor {
			op = ">="
		}
		if !g.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "  %-44s %9.3f %-6s %s %6.2f  %s\n", g.Name, g.Value, g.Unit, op, g.Limit, verdict)
	}
	fmt.Fprintln(w)
}
