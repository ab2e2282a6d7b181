package agent

import (
	"strings"
	"unsafe"
)

// renderFunc is a front end's renderer of one response format.
type renderFunc func(*Credentials) []byte

// A cached session's response body holds its access key id, secret and
// session token verbatim; kept apart as well, they would be stored twice
// (a local-STS token alone is about 300 bytes). So the agent renders a
// session's body before it publishes the credentials, and points their
// strings into it: into the slot the session's callers asked for before
// (a renewal), or, for a new session, the slot last asked for of its role.
// The render functions are the front ends' own, learnt from their first
// Rendered call; the very first session of a role (per config) is rendered
// when asked, as before, and shares from its first renewal on.

// renderSlow renders c's body for slot (the memo was empty) and, for
// cached credentials, remembers the slot for the entry's renewals and
// render for its role's new sessions.
func (c *Credentials) renderSlow(slot int, render func(*Credentials) []byte) []byte {
	b := render(c)
	c.render[slot].Store(&b)
	if e := c.owner.Load(); e != nil {
		e.mu.Lock()
		if e.slot == 0 {
			e.slot = uint8(slot + 1)
		}
		e.mu.Unlock()
		r := e.role
		if r.renders[slot].Load() == nil {
			f := renderFunc(render)
			r.renders[slot].CompareAndSwap(nil, &f)
		}
		r.lastSlot.Store(int32(slot + 1))
	}
	return b
}

// prerender renders creds, not yet published, into the slot the entry's
// (or its role's) callers use, if one is known, and makes their key,
// secret and token substrings of the body.
func (e *entry) prerender(creds *Credentials) {
	e.mu.Lock()
	slot := int(e.slot)
	e.mu.Unlock()
	if slot == 0 {
		slot = int(e.role.lastSlot.Load())
	}
	if slot == 0 {
		return
	}
	f := e.role.renders[slot-1].Load()
	if f == nil {
		return
	}
	b := (*f)(creds)
	creds.AccessKeyID = within(b, creds.AccessKeyID)
	creds.SecretAccessKey = within(b, creds.SecretAccessKey)
	creds.SessionToken = within(b, creds.SessionToken)
	creds.render[slot-1].Store(&b)
}

// within returns s as a substring of body if body holds it verbatim, else
// s. body must never change afterwards: a rendered body is immutable.
func within(body []byte, s string) string {
	if s == "" || len(body) == 0 {
		return s
	}
	i := strings.Index(unsafe.String(unsafe.SliceData(body), len(body)), s)
	if i < 0 {
		return s
	}
	return unsafe.String(&body[i], len(s))
}
