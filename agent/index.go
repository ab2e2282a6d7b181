package agent

import (
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// index finds, among the clients with neither a token nor a jwt
// condition, the ones a caller may be, without trying them all: each client
// is filed under one exact-valued condition of its match (its key) and is
// a candidate only for callers with that value; a client without one (its
// conditions are globs) is in scan, tried for every caller. Candidates are
// tried in file order and the first whose whole match holds wins, so the
// answer is the plain scan's.
//
// The key is the condition a scan of the client would check first, which
// keeps the lazy attributes lazy: the address (free) before the uid (a
// sock_diag lookup), before the process (a /proc walk), before the
// container (a Docker API call). A caller's uid, process or container is
// asked for only once the search reaches the first client filed under it,
// as a scan reaching that client would have asked for it.
type index struct {
	v4, v6 prefixIndex
	uid    map[uint32][]*client
	// proc holds the clients filed under a process attribute, by kind.
	proc [numProcKeys]map[string][]*client
	// label and ctrName hold the clients filed under a container label or
	// an exact container name.
	label   map[labelKey][]*client
	ctrName map[string][]*client
	scan    []*client
	// firstUID, firstProc and firstCtr are the smallest idx filed under
	// the uid, a process attribute, a container attribute (MaxInt: none).
	firstUID, firstProc, firstCtr int
	init                          bool
}

// The process attributes a client can be filed under.
const (
	procUnit = iota
	procCgroup
	procExe
	procExeSHA256
	numProcKeys
)

type labelKey struct{ key, value string }

// prefixIndex files clients under source CIDRs of one address family: a
// caller's address is looked up once per prefix length in use.
type prefixIndex struct {
	bits []int // the prefix lengths in use, ascending
	m    map[netip.Prefix][]*client
}

func (p *prefixIndex) add(pfx netip.Prefix, cl *client) {
	if p.m == nil {
		p.m = map[netip.Prefix][]*client{}
	}
	pfx = pfx.Masked()
	if !slices.Contains(p.bits, pfx.Bits()) {
		p.bits = append(p.bits, pfx.Bits())
		slices.Sort(p.bits)
	}
	p.m[pfx] = appendOnce(p.m[pfx], cl)
}

// appendOnce appends cl unless it is already last (a value listed twice
// in one client's match).
func appendOnce(l []*client, cl *client) []*client {
	if len(l) > 0 && l[len(l)-1] == cl {
		return l
	}
	return append(l, cl)
}

// isGlob reports whether a match value has glob characters (internal/glob:
// only * and ? are special, so anything else is an exact value).
func isGlob(s string) bool { return strings.ContainsAny(s, "*?") }

func fileUnder[K comparable](m *map[K][]*client, k K, cl *client) {
	if *m == nil {
		*m = map[K][]*client{}
	}
	(*m)[k] = appendOnce((*m)[k], cl)
}

// add files cl (clients are added in file order).
func (ix *index) add(cl *client) {
	if !ix.init {
		ix.init = true
		ix.firstUID, ix.firstProc, ix.firstCtr = math.MaxInt, math.MaxInt, math.MaxInt
	}
	switch {
	case len(cl.cidrs) > 0:
		for _, p := range cl.cidrs {
			if !p.IsValid() {
				continue // matches no address
			}
			if p.Addr().Is4() {
				ix.v4.add(p.Prefix, cl)
			} else {
				ix.v6.add(p.Prefix, cl)
			}
		}
		return
	case len(cl.uids) > 0:
		for _, u := range cl.uids {
			fileUnder(&ix.uid, u, cl)
		}
		ix.firstUID = min(ix.firstUID, cl.idx)
		return
	}
	if cl.wl != nil {
		w := cl.wl.w
		if w.NeedsProcess() {
			kind, val := -1, ""
			switch {
			case w.SystemdUnit != "" && !isGlob(w.SystemdUnit):
				kind, val = procUnit, w.SystemdUnit
			case w.CGroup != "" && !isGlob(w.CGroup):
				kind, val = procCgroup, w.CGroup
			case w.Exe != "" && !isGlob(w.Exe):
				kind, val = procExe, w.Exe
			case w.ExeSHA256 != "":
				kind, val = procExeSHA256, strings.ToLower(w.ExeSHA256)
			}
			if kind >= 0 {
				fileUnder(&ix.proc[kind], val, cl)
				ix.firstProc = min(ix.firstProc, cl.idx)
				return
			}
		} else if cm := w.Container; cm != nil {
			// (A client with process conditions is checked on its
			// process first: filed under its container, it would make
			// the search ask for a container a scan never asks for.)
			switch {
			case len(cm.Labels) > 0:
				keys := make([]string, 0, len(cm.Labels))
				for k := range cm.Labels {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				fileUnder(&ix.label, labelKey{keys[0], cm.Labels[keys[0]]}, cl)
				ix.firstCtr = min(ix.firstCtr, cl.idx)
				return
			case cm.Name != "" && !isGlob(cm.Name):
				fileUnder(&ix.ctrName, cm.Name, cl)
				ix.firstCtr = min(ix.firstCtr, cl.idx)
				return
			}
		}
	}
	ix.scan = append(ix.scan, cl)
}

// maxStreams bounds the candidate lists merged on the stack; a caller
// with more (a container with many labels) merges on the heap.
const maxStreams = 16

// first returns the first client, in file order and before idx limit,
// whose match holds for the caller; nil when none does.
func (ix *index) first(c *Caller, limit int, u *uidMemo, wa *attrs) *client {
	if !ix.init {
		return nil
	}
	var buf [maxStreams][]*client
	streams := buf[:0]
	if len(ix.scan) > 0 {
		streams = append(streams, ix.scan)
	}
	streams = ix.addrHits(streams, c.Addr)
	pendUID, pendProc, pendCtr := ix.firstUID < limit, ix.firstProc < limit, ix.firstCtr < limit
	for {
		// The candidate with the smallest idx of all lists.
		head, at := -1, limit
		for i, s := range streams {
			if len(s) > 0 && s[0].idx < at {
				head, at = i, s[0].idx
			}
		}
		// A lazy attribute is asked for once the search reaches the
		// first client filed under it (the earliest such first).
		lazy, lazyAt := -1, at
		for i, p := range [...]struct {
			pending bool
			first   int
		}{{pendUID, ix.firstUID}, {pendProc, ix.firstProc}, {pendCtr, ix.firstCtr}} {
			if p.pending && p.first <= lazyAt {
				lazy, lazyAt = i, p.first
			}
		}
		switch lazy {
		case 0:
			pendUID = false
			if uid, ok := u.get(); ok {
				streams = appendHits(streams, ix.uid[uid])
			}
			continue
		case 1:
			pendProc = false
			streams = ix.procHits(streams, wa)
			continue
		case 2:
			pendCtr = false
			streams = ix.ctrHits(streams, wa)
			continue
		}
		if head < 0 {
			return nil
		}
		cl := streams[head][0]
		for i := range streams {
			// (A client filed under several of the caller's values is
			// at the head of each of their lists.)
			if len(streams[i]) > 0 && streams[i][0] == cl {
				streams[i] = streams[i][1:]
			}
		}
		if cl.holds(c, u, wa) {
			return cl
		}
	}
}

func appendHits(streams [][]*client, l []*client) [][]*client {
	if len(l) == 0 {
		return streams
	}
	return append(streams, l)
}

// addrHits adds the lists of the caller's address, one per prefix length
// in use. An address with a zone is in no prefix (netip.Prefix.Contains).
func (ix *index) addrHits(streams [][]*client, a netip.Addr) [][]*client {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" {
		return streams
	}
	pi := &ix.v6
	if a.Is4() {
		pi = &ix.v4
	}
	for _, b := range pi.bits {
		p, err := a.Prefix(b)
		if err == nil {
			streams = appendHits(streams, pi.m[p])
		}
	}
	return streams
}

func (ix *index) procHits(streams [][]*client, wa *attrs) [][]*client {
	p, err := wa.process()
	if err != nil {
		return streams // process conditions fail closed
	}
	for kind, val := range [numProcKeys]string{p.Unit, p.Cgroup, p.Exe, p.ExeSHA256} {
		if val == "" || ix.proc[kind] == nil {
			continue // an unknown attribute matches no condition
		}
		if kind == procExeSHA256 {
			val = strings.ToLower(val)
		}
		streams = appendHits(streams, ix.proc[kind][val])
	}
	return streams
}

func (ix *index) ctrHits(streams [][]*client, wa *attrs) [][]*client {
	ctr, err := wa.container()
	if err != nil {
		return streams
	}
	if ix.label != nil {
		for k, v := range ctr.Labels {
			streams = appendHits(streams, ix.label[labelKey{k, v}])
		}
	}
	return appendHits(streams, ix.ctrName[ctr.Name])
}

// jwtIndex finds the clients whose jwt condition holds for a token: those
// with an exact subject filed under (provider, subject), the others
// (subject a glob, or none) tried for every token.
type jwtIndex struct {
	n       int // clients with jwt
	subject map[jwtKey][]*client
	scan    []*client
}

type jwtKey struct{ provider, subject string }

func (ji *jwtIndex) add(cl *client) {
	ji.n++
	if s := cl.jwt.subject; s != "" && !isGlob(s) {
		fileUnder(&ji.subject, jwtKey{cl.jwt.provider, s}, cl)
		return
	}
	ji.scan = append(ji.scan, cl)
}

// matching returns the clients, in file order, whose jwt condition holds
// for j.
func (ji *jwtIndex) matching(j *JWT) []*client {
	var out []*client
	exact, scan := ji.subject[jwtKey{j.Provider, j.Subject}], ji.scan
	for len(exact) > 0 || len(scan) > 0 {
		var cl *client
		if len(scan) == 0 || (len(exact) > 0 && exact[0].idx < scan[0].idx) {
			cl, exact = exact[0], exact[1:]
		} else {
			cl, scan = scan[0], scan[1:]
		}
		if cl.jwt.matches(j) {
			out = append(out, cl)
		}
	}
	return out
}
