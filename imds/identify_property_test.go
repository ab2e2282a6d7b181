package imds

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/config"
)

// Caller identification as a property. runIdentifySchedule drives the real
// router over real TCP connections from 127.0.0.1-5 through a schedule
// decoded from bytes: connections opened with a uid and a bearer token,
// ECS and IMDS requests (IMDSv2 tokens replayed across connections),
// closes, sockets orphaned under the lookup, and config reloads. After
// every answer an oracle written from PRODUCT.md alone says what the
// answer must be, and a second check says, whatever the oracle thinks,
// that a 200 was served as a client whose conditions the real caller
// meets.

// propToken* are the bearer tokens of the schedule's configs.
const (
	propTokA = "tok-alpha-0001"
	propTokB = "tok-bravo-0002"
	propTokC = "tok-charlie-03"
	// propTokUnknown is in no config.
	propTokUnknown = "tok-unknown-zz"
)

// propClient is one client of a trust config as the oracle reads it.
type propClient struct {
	name  string
	token string // "" = no token condition
	cidrs []string
	uids  []uint32
	roles []string // the first is the default role
}

// propConfig is a trust config of the schedules; yaml renders it for the
// product, the oracle reads the fields.
type propConfig struct {
	name    string
	tokens  string // imds.tokens
	clients []propClient
}

// propRoles are the roles of every config: the session name is the client,
// which staticSource puts into the session token.
var propRoles = []string{"r1", "r2", "r3"}

// propConfigs move clients between tokens, addresses and uids, revoke
// them, and put token-less clients before and after token holders.
var propConfigs = []propConfig{
	{name: "base", tokens: config.TokensRequired, clients: []propClient{
		{name: "alpha", token: propTokA, roles: []string{"r1", "r2"}},
		{name: "bravo", token: propTokB, cidrs: []string{"127.0.0.2/32"}, roles: []string{"r2"}},
		{name: "root", uids: []uint32{0}, roles: []string{"r3"}},
		{name: "dev", cidrs: []string{"127.0.0.1/32", "127.0.0.3/32"}, uids: []uint32{1000, 1001}, roles: []string{"r1"}},
		{name: "lan", cidrs: []string{"127.0.0.0/30"}, roles: []string{"r2", "r1"}},
		// A second holder of bravo's token, after a token-less client:
		// a tokB caller at 127.0.0.1 is bravo-uid or nobody, never lan.
		{name: "bravo-uid", token: propTokB, uids: []uint32{1002}, roles: []string{"r3"}},
	}},
	{name: "moved", tokens: config.TokensOptional, clients: []propClient{
		// Token-less and first: wins for token callers at .4 too.
		{name: "early", cidrs: []string{"127.0.0.4/32"}, roles: []string{"r3"}},
		// alpha's token rotated; its old token is now charlie's.
		{name: "alpha", token: propTokC, cidrs: []string{"127.0.0.0/29"}, roles: []string{"r2"}},
		{name: "root", uids: []uint32{1002}, roles: []string{"r3", "r1"}},
		{name: "charlie", token: propTokA, uids: []uint32{0, 1000}, roles: []string{"r1"}},
		{name: "dev", cidrs: []string{"127.0.0.2/31"}, uids: []uint32{1000}, roles: []string{"r1", "r2"}},
	}},
	{name: "narrow", tokens: config.TokensRequired, clients: []propClient{
		{name: "dev", uids: []uint32{1000, 1001}, roles: []string{"r2"}},
		{name: "alpha", token: propTokA, cidrs: []string{"127.0.0.1/32"}, uids: []uint32{1001}, roles: []string{"r1", "r3"}},
		{name: "bravo", token: propTokB, roles: []string{"r2"}},
		{name: "alpha-lan", token: propTokA, cidrs: []string{"127.0.0.2/31"}, roles: []string{"r3"}},
		{name: "lan", cidrs: []string{"127.0.0.0/24"}, roles: []string{"r1"}},
	}},
	{name: "revoked", tokens: config.TokensOptional, clients: []propClient{
		{name: "root", cidrs: []string{"127.0.0.5/32"}, uids: []uint32{0}, roles: []string{"r1"}},
	}},
}

func (pc *propConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "region: %s\nimds: { tokens: %s }\nsts: { mode: local, local: { account_id: %q } }\nroles:\n", testRegion, pc.tokens, testAccount)
	for _, r := range propRoles {
		fmt.Fprintf(&b, "  - { name: %s, session_name: \"{{.Client}}\" }\n", r)
	}
	b.WriteString("clients:\n")
	for _, c := range pc.clients {
		var m []string
		if c.token != "" {
			m = append(m, fmt.Sprintf("token: %q", c.token))
		}
		if len(c.cidrs) > 0 {
			m = append(m, fmt.Sprintf("source_cidrs: [%s]", strings.Join(c.cidrs, ", ")))
		}
		if len(c.uids) > 0 {
			u := make([]string, len(c.uids))
			for i, v := range c.uids {
				u[i] = fmt.Sprint(v)
			}
			m = append(m, "uids: ["+strings.Join(u, ", ")+"]")
		}
		fmt.Fprintf(&b, "  - { name: %s, match: { %s }, roles: [%s] }\n", c.name, strings.Join(m, ", "), strings.Join(c.roles, ", "))
	}
	return b.String()
}

// propCaller is what the oracle knows of the caller of one request.
type propCaller struct {
	addr netip.Addr
	// uid is the caller's uid as the product can learn it; uidKnown is
	// false when the lookup fails (an orphaned socket).
	uid      uint32
	uidKnown bool
	// token is the presented bearer token (ECS only).
	token    string
	hasToken bool
}

// addrAndUID reports whether the client's address and uid conditions hold.
func (cl *propClient) addrAndUID(c propCaller) bool {
	if len(cl.cidrs) > 0 && !slices.ContainsFunc(cl.cidrs, func(p string) bool { return netip.MustParsePrefix(p).Contains(c.addr) }) {
		return false
	}
	if len(cl.uids) > 0 && (!c.uidKnown || !slices.Contains(cl.uids, c.uid)) {
		return false
	}
	return true
}

// identify is PRODUCT.md's rule: clients are tried in file order and the
// first whose every condition holds is the caller. A caller without a
// token matches no token-bearing client (403 when nothing matches). A
// presented token that no client holds is 401; otherwise it can be one of
// its holders, or a token-less client listed before the first of them
// (file order), and never falls back to address or uid trust past that
// point: 401 when none holds.
func (pc *propConfig) identify(c propCaller) (*propClient, int) {
	if !c.hasToken {
		for i := range pc.clients {
			if cl := &pc.clients[i]; cl.token == "" && cl.addrAndUID(c) {
				return cl, http.StatusOK
			}
		}
		return nil, http.StatusForbidden
	}
	// An empty token is presented too, and no client holds it.
	holds := func(cl *propClient) bool { return cl.token != "" && cl.token == c.token }
	if !slices.ContainsFunc(pc.clients, func(cl propClient) bool { return holds(&cl) }) {
		return nil, http.StatusUnauthorized
	}
	for i := range pc.clients {
		cl := &pc.clients[i]
		if cl.token != "" && !holds(cl) {
			continue
		}
		if cl.addrAndUID(c) {
			return cl, http.StatusOK
		}
		if holds(cl) {
			// The first holder's conditions failed: from here only the
			// token's other holders can be the caller.
			for j := i + 1; j < len(pc.clients); j++ {
				if h := &pc.clients[j]; holds(h) && h.addrAndUID(c) {
					return h, http.StatusOK
				}
			}
			return nil, http.StatusUnauthorized
		}
	}
	return nil, http.StatusUnauthorized
}

func (pc *propConfig) client(name string) *propClient {
	for i := range pc.clients {
		if pc.clients[i].name == name {
			return &pc.clients[i]
		}
	}
	return nil
}

// kernel is an honest fake of sock_diag: it reports a connection's real
// uid while the client socket is established and owned, and an error once
// the schedule has orphaned it (or for a socket it does not know). It
// never names another uid.
type kernel struct {
	mu     sync.Mutex
	server netip.AddrPort
	socks  map[netip.AddrPort]*socket // by the client's endpoint
	// strays counts lookups of sockets the schedule never opened, or
	// against another server endpoint.
	strays int
}

type socket struct {
	uid      uint32
	orphaned bool
	closed   bool
	// answered: the lookup has answered for this socket; lastUID and
	// lastOK are its last answer.
	answered bool
	lastUID  uint32
	lastOK   bool
}

var errOrphaned = errors.New("the client socket is not established or has no owner: uid unknown")

func (k *kernel) lookup(local, remote netip.AddrPort) (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.socks[remote]
	if s == nil || local != k.server {
		k.strays++
		return 0, errors.New("no such socket")
	}
	s.answered = true
	s.lastOK = !s.orphaned && !s.closed
	s.lastUID = 0
	if !s.lastOK {
		return 0, errOrphaned
	}
	s.lastUID = s.uid
	return s.uid, nil
}

// view is the uid the product learns for a socket: its last answer when it
// asked (the product may remember it per connection), else what it would
// be told now. Either way it is the real uid or unknown.
func (k *kernel) view(remote netip.AddrPort) (uint32, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.socks[remote]
	if s.answered {
		return s.lastUID, s.lastOK
	}
	return s.uid, !s.orphaned
}

// propConn is one client connection of a schedule: one TCP connection,
// spoken to by hand so that every request goes exactly over it.
type propConn struct {
	id    int
	conn  net.Conn
	br    *bufio.Reader
	local netip.AddrPort
	// uid is the real owner of the socket; token the bearer token its
	// caller knows (ECS requests may present it).
	uid      uint32
	token    string
	hasToken bool
	orphaned bool
	// lastIMDS is the IMDSv2 token last issued on this connection (-1: none).
	lastIMDS int
}

func (pc *propConn) String() string {
	tok := "no token"
	if pc.hasToken {
		tok = fmt.Sprintf("token %q", pc.token)
	}
	if pc.orphaned {
		tok += ", orphaned"
	}
	return fmt.Sprintf("c%d(%s uid %d %s)", pc.id, pc.local.Addr(), pc.uid, tok)
}

// roundTrip sends one request on the connection and reads its answer.
func (pc *propConn) roundTrip(host, method, path string, hdr http.Header) (int, []byte, bool, error) {
	req, err := http.NewRequest(method, "http://"+host+path, nil)
	if err != nil {
		return 0, nil, false, err
	}
	req.Header = hdr
	pc.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(pc.conn); err != nil {
		return 0, nil, false, fmt.Errorf("write: %w", err)
	}
	res, err := http.ReadResponse(pc.br, req)
	if err != nil {
		return 0, nil, false, fmt.Errorf("read response: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, false, fmt.Errorf("read body: %w", err)
	}
	return res.StatusCode, body, res.Close, nil
}

// imdsIssued is an IMDSv2 token the schedule obtained, with what the
// oracle knows it is bound to.
type imdsIssued struct {
	tok    string
	client string // the PUT caller's client ("" = none)
	addr   netip.Addr
	conn   int
}

// Request kinds.
const (
	reqECS = iota
	reqPUT
	reqIMDS
)

// IMDSv2 token choices of an IMDS GET: imdsChoices[x%8] of its op, x/8
// picks among the issued tokens.
const (
	imdsChoiceNone   = iota // no token header
	imdsChoiceOwn           // the token last issued on this connection
	imdsChoiceAny           // any issued token, maybe another connection's
	imdsChoiceForged        // a token the server never issued
)

var imdsChoices = [8]int{imdsChoiceNone, imdsChoiceOwn, imdsChoiceOwn, imdsChoiceOwn, imdsChoiceAny, imdsChoiceAny, imdsChoiceForged, imdsChoiceOwn}

// propReq.imdsTok values besides indexes of issued tokens.
const (
	imdsNone    = -1 // no token header
	imdsForged  = -2 // a token the server never issued
	imdsForgery = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

// propReq is one planned request.
type propReq struct {
	c    *propConn
	kind int
	// path is the URL path; role the role asked for ("" = the default
	// role); list: the IMDS role list.
	path string
	role string
	list bool
	// auth: present the connection's token (ECS).
	auth bool
	// imdsTok is imdsNone, imdsForged or an index into the issued tokens.
	imdsTok int
	forged  string

	// The answer.
	status int
	body   []byte
	closed bool
	err    error
}

var propRoleChoices = []string{"", "r1", "r2", "r3", "nope"}

// plan decodes a request on c: b picks the path, x the ECS token's
// presence or the IMDSv2 token.
func (s *propSchedule) plan(c *propConn, kind int, b, x byte) *propReq {
	q := &propReq{c: c, kind: kind, imdsTok: imdsNone}
	slash := ""
	if b&8 != 0 {
		slash = "/"
	}
	switch kind {
	case reqECS:
		q.role = propRoleChoices[int(b)%len(propRoleChoices)]
		q.path = "/creds" + slash
		if q.role != "" {
			q.path = "/role/" + q.role + slash
		}
		q.auth = x&3 != 0 && c.hasToken
	case reqPUT:
		q.path = tokenPath + slash
	case reqIMDS:
		q.role = propRoleChoices[int(b)%len(propRoleChoices)]
		q.list = q.role == ""
		base := credsPath
		if b&16 != 0 {
			base = credsExtPath
		}
		q.path = base + "/" + q.role
		if !q.list {
			q.path += slash
		}
		switch imdsChoices[x%8] {
		case imdsChoiceOwn:
			q.imdsTok = c.lastIMDS
		case imdsChoiceAny:
			if len(s.issued) > 0 {
				q.imdsTok = int(x/8) % len(s.issued)
			}
		case imdsChoiceForged:
			q.imdsTok = imdsForged
			q.forged = imdsForgery
			if len(s.issued) > 0 {
				// A real token with one character changed.
				t := []byte(s.issued[int(x/8)%len(s.issued)].tok)
				t[len(t)/2] ^= 1
				q.forged = string(t)
			}
		}
	}
	return q
}

// do sends the planned request (safe to run concurrently for distinct
// connections).
func (s *propSchedule) do(q *propReq) {
	hdr := http.Header{}
	method := http.MethodGet
	switch q.kind {
	case reqECS:
		if q.auth {
			hdr["Authorization"] = []string{q.c.token}
		}
	case reqPUT:
		method = http.MethodPut
		hdr.Set(tokenTTLHeader, "21600")
	case reqIMDS:
		switch {
		case q.imdsTok == imdsForged:
			hdr.Set(tokenHeader, q.forged)
		case q.imdsTok >= 0:
			hdr.Set(tokenHeader, s.issued[q.imdsTok].tok)
		}
	}
	q.status, q.body, q.closed, q.err = q.c.roundTrip(s.f.addr, method, q.path, hdr)
}

// propSchedule is one run's state.
type propSchedule struct {
	t      testing.TB
	f      *fixture
	k      *kernel
	cfgs   []*config.Config
	cur    int // index of the config in force
	conns  []*propConn
	nextID int
	issued []imdsIssued
	trace  []string
	// outcomes counts answers by status and, for 200s, client.
	outcomes map[string]int
}

// maxPropConns bounds a schedule's open connections.
const maxPropConns = 8

var (
	propUIDs = []uint32{0, 1000, 1001, 1002, 4242}
	// propConnTokens: what a connection's caller knows (nil: no token).
	propConnTokens = []*string{nil, nil, ptr(propTokA), ptr(propTokB), ptr(propTokC), ptr(propTokUnknown), ptr(""), nil, ptr(propTokA), ptr(propTokB)}
)

func ptr(s string) *string { return &s }

func (s *propSchedule) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf(format, args...))
}

func (s *propSchedule) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s\nconfig in force: %q\nschedule so far:\n  %s", fmt.Sprintf(format, args...), propConfigs[s.cur].name, strings.Join(s.trace, "\n  "))
}

func (s *propSchedule) open(a, b byte) {
	if len(s.conns) >= maxPropConns {
		s.closeConn(s.conns[int(a)%len(s.conns)])
	}
	local := netip.AddrFrom4([4]byte{127, 0, 0, 1 + a%5})
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	conn, err := d.Dial("tcp", s.f.addr)
	if err != nil {
		s.fatalf("dial from %s: %v", local, err)
	}
	c := &propConn{id: s.nextID, conn: conn, br: bufio.NewReader(conn), local: conn.LocalAddr().(*net.TCPAddr).AddrPort(),
		uid: propUIDs[int(a/5)%len(propUIDs)], lastIMDS: imdsNone}
	s.nextID++
	if tok := propConnTokens[int(b)%len(propConnTokens)]; tok != nil {
		c.token, c.hasToken = *tok, true
	}
	s.k.mu.Lock()
	s.k.socks[c.local] = &socket{uid: c.uid}
	s.k.mu.Unlock()
	s.conns = append(s.conns, c)
	s.logf("open %s", c)
}

func (s *propSchedule) closeConn(c *propConn) {
	c.conn.Close()
	s.k.mu.Lock()
	s.k.socks[c.local].closed = true
	s.k.mu.Unlock()
	s.conns = slices.DeleteFunc(s.conns, func(o *propConn) bool { return o == c })
	s.logf("close c%d", c.id)
}

func (s *propSchedule) orphan(c *propConn) {
	c.orphaned = true
	s.k.mu.Lock()
	s.k.socks[c.local].orphaned = true
	s.k.mu.Unlock()
	s.logf("orphan c%d (its uid lookups fail from now on)", c.id)
}

func (s *propSchedule) reload(i int) {
	s.cur = i
	s.f.agent.Apply(s.cfgs[i])
	s.f.srv.Apply(s.cfgs[i])
	s.logf("reload %q", propConfigs[i].name)
}

// callerOf is the oracle's view of q's caller, after its answer.
func (s *propSchedule) callerOf(q *propReq) propCaller {
	c := propCaller{addr: q.c.local.Addr()}
	c.uid, c.uidKnown = s.k.view(q.c.local)
	if q.kind == reqECS && q.auth {
		c.token, c.hasToken = q.c.token, true
	}
	return c
}

// want is the oracle: the status, client and role (or role-list body) of
// q's answer under the config in force.
func (s *propSchedule) want(q *propReq) (status int, client, role string) {
	pc := &propConfigs[s.cur]
	cl, st := pc.identify(s.callerOf(q))
	name := ""
	if cl != nil {
		name = cl.name
	}
	switch q.kind {
	case reqPUT:
		// A token goes to any caller, bound to its client (or to none).
		return http.StatusOK, name, ""
	case reqIMDS:
		// The token policy comes before the trust decision's refusal.
		switch {
		case q.imdsTok == imdsNone:
			if pc.tokens == config.TokensRequired {
				return http.StatusUnauthorized, "", ""
			}
		case q.imdsTok == imdsForged:
			return http.StatusUnauthorized, "", ""
		default:
			// Bound to the client and the address it was issued to.
			if is := s.issued[q.imdsTok]; is.client != name || is.addr != q.c.local.Addr() {
				return http.StatusUnauthorized, "", ""
			}
		}
	}
	if cl == nil {
		return st, "", ""
	}
	if q.list {
		return http.StatusOK, name, cl.roles[0]
	}
	role = q.role
	if role == "" {
		role = cl.roles[0]
	}
	if !slices.Contains(cl.roles, role) {
		// Unknown, or not this client's: the same 404.
		return http.StatusNotFound, "", ""
	}
	return http.StatusOK, name, role
}

// served decodes who a 200 was served as: staticSource's session token is
// token/ROLE/SESSION and the session name is the client. A role list
// names only the role.
func servedAs(q *propReq) (client, role string, err error) {
	if q.kind == reqIMDS && q.list {
		return "", string(q.body), nil
	}
	var body struct{ Token, RoleArn string }
	if err := json.Unmarshal(q.body, &body); err != nil {
		return "", "", fmt.Errorf("credentials body %q: %v", q.body, err)
	}
	parts := strings.Split(body.Token, "/")
	if len(parts) != 3 || parts[0] != "token" {
		return "", "", fmt.Errorf("session token %q is not staticSource's", body.Token)
	}
	if q.kind == reqECS && body.RoleArn != "arn:aws:iam::"+testAccount+":role/"+parts[1] {
		return "", "", fmt.Errorf("RoleArn %q does not match the session token %q", body.RoleArn, body.Token)
	}
	return parts[2], parts[1], nil
}

// check judges one answer: first the invariant (a 200 is served as a
// client whose every condition the real caller meets), then the oracle's
// exact answer.
func (s *propSchedule) check(q *propReq) {
	s.t.Helper()
	desc := fmt.Sprintf("c%d %s", q.c.id, q.path)
	if q.auth {
		desc += fmt.Sprintf(" Authorization %q", q.c.token)
	}
	switch {
	case q.imdsTok == imdsForged:
		desc += " with a forged IMDSv2 token"
	case q.imdsTok >= 0:
		is := s.issued[q.imdsTok]
		desc += fmt.Sprintf(" with IMDSv2 token #%d (issued on c%d at %s to client %q)", q.imdsTok, is.conn, is.addr, is.client)
	}
	if q.kind == reqPUT {
		desc = fmt.Sprintf("c%d PUT %s", q.c.id, q.path)
	}
	if q.err != nil {
		s.fatalf("%s: %v", desc, q.err)
	}
	status, client, role := s.want(q)
	// A PUT's answer does not say whom its token is bound to, and a role
	// list names only the role: what the later uses of the token show.
	checkClient := q.kind != reqPUT && !q.list
	got := fmt.Sprint(q.status)
	var gotClient, gotRole string
	if q.status == http.StatusOK && q.kind != reqPUT {
		var err error
		if gotClient, gotRole, err = servedAs(q); err != nil {
			s.fatalf("%s: %v", desc, err)
		}
		got += fmt.Sprintf(" as %q role %q", gotClient, gotRole)
		if !q.list {
			s.invariant(q, desc, gotClient, gotRole)
		}
	}
	s.logf("%s -> %s", desc, got)
	kind := []string{reqECS: "ecs", reqPUT: "put", reqIMDS: "imds"}[q.kind]
	if q.list {
		kind = "list"
	}
	if checkClient && q.status == http.StatusOK {
		s.outcomes[fmt.Sprintf("%s 200 as %s", kind, gotClient)]++
	} else {
		s.outcomes[fmt.Sprintf("%s %d", kind, q.status)]++
	}
	if q.status != status || gotRole != role || (checkClient && gotClient != client) {
		s.fatalf("%s: got %s, want %d as %q role %q", desc, got, status, client, role)
	}
	if q.kind == reqPUT {
		s.issued = append(s.issued, imdsIssued{tok: string(q.body), client: client, addr: q.c.local.Addr(), conn: q.c.id})
		q.c.lastIMDS = len(s.issued) - 1
		s.trace[len(s.trace)-1] += fmt.Sprintf(" (token #%d, bound to client %q)", q.c.lastIMDS, client)
	}
	if q.closed {
		// The server ended the connection: it takes no more requests.
		s.closeConn(q.c)
	}
}

// invariant: the client a 200 was served as holds for the real caller (its
// real uid, not what a lookup said), with the token it presented; an
// IMDSv2 token it used was issued to that client at that address.
func (s *propSchedule) invariant(q *propReq, desc, client, role string) {
	s.t.Helper()
	cl := propConfigs[s.cur].client(client)
	if cl == nil {
		s.fatalf("SERVED AS A CLIENT NOT IN THE CONFIG: %s was served as %q", desc, client)
	}
	actual := propCaller{addr: q.c.local.Addr(), uid: q.c.uid, uidKnown: true}
	var fails []string
	if !cl.addrAndUID(actual) {
		fails = append(fails, fmt.Sprintf("address %s / uid %d", actual.addr, actual.uid))
	}
	if cl.token != "" && (!q.auth || q.c.token != cl.token) {
		fails = append(fails, "its token was not presented")
	}
	if q.imdsTok >= 0 {
		if is := s.issued[q.imdsTok]; is.client != client || is.addr != actual.addr {
			fails = append(fails, fmt.Sprintf("the IMDSv2 token was issued to %q at %s", is.client, is.addr))
		}
	}
	if !slices.Contains(cl.roles, role) {
		fails = append(fails, fmt.Sprintf("role %q is not the client's", role))
	}
	if len(fails) > 0 {
		s.fatalf("SERVED AS A CLIENT THE CALLER IS NOT: %s was served as %q, whose conditions the real caller %s fails: %s",
			desc, client, q.c, strings.Join(fails, "; "))
	}
}

// Op codes of a schedule: each op is four bytes {op, a, b, x}, op%16 is
// the code.
const (
	opOpen   = 0  // 0-1: open a connection (a: address and uid, b: token)
	opECS    = 2  // 2-5: an ECS request on connection a (b: path, x&3 != 0: present the token)
	opPUT    = 6  // 6-7: PUT an IMDSv2 token on connection a
	opIMDS   = 8  // 8-11: an IMDS GET on connection a (b: path, x: which IMDSv2 token)
	opClose  = 12 // close connection a
	opOrphan = 13 // orphan connection a's socket under the uid lookup
	opReload = 14 // reload config b
	opBurst  = 15 // every open connection sends one request at once
)

// maxPropOps bounds a schedule.
const maxPropOps = 200

// runIdentifySchedule runs the schedule ops against a fresh fixture; cfgs
// are propConfigs, parsed.
func runIdentifySchedule(t testing.TB, ops []byte, cfgs []*config.Config, outcomes map[string]int) {
	k := &kernel{socks: map[netip.AddrPort]*socket{}}
	f := startFixture(t, propConfigs[0].yaml(), fixtureOpts{source: &staticSource{}, uid: k.lookup})
	k.mu.Lock()
	k.server = netip.MustParseAddrPort(f.addr)
	k.mu.Unlock()
	s := &propSchedule{t: t, f: f, k: k, cfgs: cfgs, outcomes: outcomes}
	// Runs before the fixture's cleanups: no connection outlives the test.
	t.Cleanup(func() {
		for _, c := range s.conns {
			c.conn.Close()
		}
	})
	pick := func(a byte) *propConn {
		if len(s.conns) == 0 {
			s.open(a, a/8)
		}
		return s.conns[int(a)%len(s.conns)]
	}
	for p := 0; p+3 < len(ops) && p/4 < maxPropOps; p += 4 {
		op, a, b, x := ops[p]%16, ops[p+1], ops[p+2], ops[p+3]
		switch {
		case op < opECS:
			s.open(a, b)
		case op < opPUT:
			s.request(s.plan(pick(a), reqECS, b, x))
		case op < opIMDS:
			s.request(s.plan(pick(a), reqPUT, b, x))
		case op < opClose:
			c := pick(a)
			if imdsChoices[x%8] == imdsChoiceOwn && c.lastIMDS == imdsNone {
				// As SDKs do: a token first.
				s.request(s.plan(c, reqPUT, b, x))
			}
			if slices.Contains(s.conns, c) { // the server may have closed it
				s.request(s.plan(c, reqIMDS, b, x))
			}
		case op == opClose:
			if len(s.conns) > 0 {
				s.closeConn(pick(a))
			}
		case op == opOrphan:
			s.orphan(pick(a))
		case op == opReload:
			s.reload(int(b) % len(cfgs))
		case op == opBurst:
			s.burst(a, b, x)
		}
	}
	k.mu.Lock()
	strays := k.strays
	k.mu.Unlock()
	if strays > 0 {
		s.fatalf("%d uid lookups named a socket the schedule never opened", strays)
	}
}

func (s *propSchedule) request(q *propReq) {
	s.t.Helper()
	s.do(q)
	s.check(q)
}

// burst sends one request on every open connection at once (no reload can
// come between them), then checks each answer.
func (s *propSchedule) burst(a, b, x byte) {
	s.t.Helper()
	qs := make([]*propReq, len(s.conns))
	for i, c := range s.conns {
		k := []int{reqECS, reqECS, reqIMDS, reqPUT}[int(a+byte(i))%4]
		qs[i] = s.plan(c, k, b+byte(37*i), x+byte(101*i))
	}
	s.logf("burst of %d", len(qs))
	var wg sync.WaitGroup
	for _, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.do(q)
		}()
	}
	wg.Wait()
	for _, q := range qs {
		s.check(q)
	}
}

// parsePropConfigs parses every config of the schedules once.
func parsePropConfigs(t testing.TB) []*config.Config {
	cfgs := make([]*config.Config, len(propConfigs))
	for i := range propConfigs {
		cfgs[i] = parseConfig(t, propConfigs[i].yaml())
	}
	return cfgs
}

// TestCallerIdentificationProperties runs seeded random schedules: no
// request is served as a client whose conditions its real caller fails,
// and every answer is the one PRODUCT.md's rules give.
func TestCallerIdentificationProperties(t *testing.T) {
	cfgs := parsePropConfigs(t)
	start := time.Now()
	outcomes := map[string]int{}
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 12))
			ops := make([]byte, 4*maxPropOps)
			for i := range ops {
				ops[i] = byte(r.IntN(256))
			}
			runIdentifySchedule(t, ops, cfgs, outcomes)
		})
	}
	keys := slices.Sorted(maps.Keys(outcomes))
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s: %d", k, outcomes[k])
	}
	t.Logf("30 schedules of %d ops in %v; answers: %s", maxPropOps, time.Since(start).Round(time.Millisecond), strings.Join(keys, ", "))
}

// FuzzCallerIdentification is the same property over fuzzed schedules.
func FuzzCallerIdentification(f *testing.F) {
	cfgs := parsePropConfigs(f)
	for _, seed := range propSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		runIdentifySchedule(t, ops, cfgs, map[string]int{})
	})
}

// Seed schedule ops. Connections are named by their position among the
// open ones; addresses 0-4 are 127.0.0.1-5; uids index propUIDs; tokens
// index propConnTokens (0 none, 2 alpha's, 3 bravo's, 4 charlie's, 5
// unknown, 6 empty); roles index propRoleChoices (0 the default).
func sOpen(addr, uid, tok int) [4]byte { return [4]byte{opOpen, byte(addr + 5*uid), byte(tok), 0} }

func sECS(conn, role int, auth bool) [4]byte {
	x := byte(0)
	if auth {
		x = 1
	}
	return [4]byte{opECS, byte(conn), byte(role), x}
}

func sPUT(conn int) [4]byte { return [4]byte{opPUT, byte(conn), 0, 0} }

func sIMDS(conn, role, choice, idx int) [4]byte {
	x := slices.Index(imdsChoices[:], choice)
	return [4]byte{opIMDS, byte(conn), byte(role), byte(x + 8*idx)}
}

func sClose(conn int) [4]byte     { return [4]byte{opClose, byte(conn), 0, 0} }
func sOrphan(conn int) [4]byte    { return [4]byte{opOrphan, byte(conn), 0, 0} }
func sReload(cfg int) [4]byte     { return [4]byte{opReload, 0, byte(cfg), 0} }
func sBurst(a, b, x byte) [4]byte { return [4]byte{opBurst, a, b, x} }

// sched concatenates ops.
func sched(ops ...[4]byte) []byte {
	var b []byte
	for _, o := range ops {
		b = append(b, o[:]...)
	}
	return b
}

// propSeeds are hand-written schedules, each a case of the rules (under
// the "base" config unless reloaded).
var propSeeds = [][]byte{
	// 127.0.0.2 uid 1000 with bravo's token: bravo; without it: lan; an
	// unknown or empty token: 401, never lan.
	sched(sOpen(1, 1, 3), sECS(0, 0, true), sECS(0, 0, false), sOpen(1, 1, 5), sECS(1, 1, true), sOpen(1, 1, 6), sECS(2, 0, true)),
	// bravo's token at 127.0.0.1 (bravo's CIDR fails): bravo-uid as uid
	// 1002, else 401 (lan, listed between the two holders, is no fallback).
	sched(sOpen(0, 3, 3), sECS(0, 0, true), sOpen(0, 1, 3), sECS(1, 0, true), sECS(1, 2, false)),
	// uid 0 orphaned before its first request: not root; orphaned after
	// it: still root (its uid was learnt from the owned socket).
	sched(sOpen(4, 0, 0), sOrphan(0), sECS(0, 0, false), sOpen(4, 0, 0), sECS(1, 0, false), sOrphan(1), sECS(1, 3, false)),
	// IMDSv2: a token from 127.0.0.1 (dev) replayed from 127.0.0.2 (lan),
	// and on 127.0.0.1 by uid 4242 (lan), then by uid 1001 (dev again).
	sched(sOpen(0, 1, 0), sPUT(0), sIMDS(0, 1, imdsChoiceOwn, 0), sOpen(1, 1, 0), sIMDS(1, 2, imdsChoiceAny, 0),
		sOpen(0, 4, 0), sIMDS(2, 2, imdsChoiceAny, 0), sOpen(0, 2, 0), sIMDS(3, 1, imdsChoiceAny, 0), sIMDS(3, 0, imdsChoiceForged, 0)),
	// A reload between a token and its use: the caller is now another
	// client, or none; alpha's old token is charlie's.
	sched(sOpen(0, 1, 2), sPUT(0), sECS(0, 0, true), sReload(1), sECS(0, 0, true), sIMDS(0, 0, imdsChoiceOwn, 0),
		sIMDS(0, 1, imdsChoiceNone, 0), sReload(3), sECS(0, 1, true), sIMDS(0, 1, imdsChoiceOwn, 0), sReload(2), sECS(0, 3, true)),
	// A token-less client listed before every holder of the presented
	// token is the caller (file order): early, at 127.0.0.4, under
	// "moved"; under "narrow" alpha-lan's CIDR fails and lan, listed
	// after it, is no fallback: 401.
	sched(sOpen(3, 4, 2), sReload(1), sECS(0, 0, true), sECS(0, 1, true), sReload(2), sECS(0, 0, true), sECS(0, 0, false)),
	// Every connection at once, across reloads and a close.
	sched(sOpen(0, 0, 2), sOpen(1, 1, 3), sOpen(2, 2, 0), sOpen(3, 3, 4), sBurst(1, 2, 3), sReload(2), sBurst(7, 9, 1),
		sClose(0), sOrphan(1), sBurst(3, 4, 5), sReload(1), sBurst(0, 0, 0)),
}
