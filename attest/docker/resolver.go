package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
)

// Outcomes of a resolution, the bounded label set of the metrics.
const (
	OutcomeFound       = "found"
	OutcomeUnknown     = "unknown"
	OutcomeAmbiguous   = "ambiguous"
	OutcomeUnavailable = "unavailable"
	OutcomeBusy        = "busy"
	OutcomeSpoofed     = "spoofed"
)

// Errors of a resolution, by outcome.
var (
	ErrUnknown     = errors.New("no running container has this address")
	ErrAmbiguous   = errors.New("more than one container claims this address")
	ErrUnavailable = errors.New("the Docker API is not reachable")
	ErrBusy        = errors.New("too many container lookups waiting")
	ErrSpoofed     = errors.New("the connection is not in the container's own TCP table")
	errSharedNet   = errors.New("the container shares another's network namespace")
)

// Options configure a Resolver.
type Options struct {
	// Host is the Engine API address (unix:///PATH).
	Host   string
	Logger *zap.Logger
	// MaxLookups bounds the confirmations of a mapped address running at
	// once (0 = 4); scans for an address the map does not know get half
	// as many slots of their own. Wait bounds how long a lookup waits for
	// a slot (0 = 2s).
	MaxLookups int
	Wait       time.Duration
	// Outcome, when set, counts each resolution's outcome.
	Outcome func(outcome string)
}

// Resolver maps caller addresses to containers. Run keeps its map.
type Resolver struct {
	c    *client
	log  *zap.Logger
	wait time.Duration
	// Separate budgets, so callers the map does not know — any local
	// user, most of them no container — cannot use up the lookups a
	// known container's connection needs: confirm is one inspect of the
	// container the map names, scans list and inspect every container.
	confirms chan struct{}
	scans    chan struct{}
	outcome  func(string)
	// procNet: the sidecar is in the host's PID namespace, where the
	// API's pids are, so it can read a container's own TCP table.
	procNet bool

	mu     sync.RWMutex
	byAddr map[netip.Addr][]string // address -> ids of running containers holding it
	addrs  map[string][]netip.Addr // id -> its addresses
	images map[string]*imageJSON   // by image ID (immutable)
	// scanning: addresses with a scan in flight (closed when it ends), so
	// one address's connections take one scan slot at a time.
	scanning map[netip.Addr]chan struct{}
	up       atomic.Bool // the events stream is open and the list loaded
}

// New builds a Resolver; nothing is asked of the API until Run.
func New(opts Options) (*Resolver, error) {
	c, err := newClient(opts.Host)
	if err != nil {
		return nil, err
	}
	r := &Resolver{c: c, log: opts.Logger, wait: opts.Wait, outcome: opts.Outcome,
		byAddr: map[netip.Addr][]string{}, addrs: map[string][]netip.Addr{}, images: map[string]*imageJSON{},
		scanning: map[netip.Addr]chan struct{}{}}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.wait == 0 {
		r.wait = 2 * time.Second
	}
	n := opts.MaxLookups
	if n <= 0 {
		n = 4
	}
	r.confirms = make(chan struct{}, n)
	r.scans = make(chan struct{}, max(1, n/2))
	if r.outcome == nil {
		r.outcome = func(string) {}
	}
	// The API's pids are the host PID namespace's (dockerd's, normally).
	r.procNet = inInitialPIDNamespace()
	return r, nil
}

// Ping negotiates the API version: it fails when the API does not answer.
func (r *Resolver) Ping(ctx context.Context) error { return r.c.negotiate(ctx) }

// Up reports whether the map is being kept (the API answered and the
// events stream is open).
func (r *Resolver) Up() bool { return r.up.Load() }

// Run keeps the address map from the API until ctx ends: negotiate the
// version, open the events stream, load the list, apply events; when the
// API is unreachable, log it (container conditions fail closed meanwhile)
// and retry with capped backoff, so the sidecar recovers when dockerd
// comes back. after is the timer to wait with (time.After in production).
func (r *Resolver) Run(ctx context.Context, after func(time.Duration) <-chan time.Time) error {
	backoff := 500 * time.Millisecond
	warned := false
	for {
		err := r.session(ctx)
		r.up.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if !warned {
			r.log.Warn("the Docker API is unreachable: container conditions fail closed until it answers", zap.Error(err))
			warned = true
		} else {
			r.log.Debug("docker API session ended", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-after(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
		if err == nil {
			backoff = 500 * time.Millisecond
		}
	}
}

// session is one connection to the API: it returns when the stream breaks.
func (r *Resolver) session(ctx context.Context) error {
	if err := r.c.negotiate(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan event, 256)
	errc := make(chan error, 1)
	opened := make(chan struct{})
	go func() {
		errc <- r.c.events(ctx, func() { close(opened) }, func(ev event) {
			select {
			case events <- ev:
			default:
				// Overflow: the map may be stale; reload it.
				cancel()
			}
		})
	}()
	select {
	case <-opened:
	case err := <-errc:
		return err
	}
	// The list after the stream opened: no change falls between the two.
	if err := r.reload(ctx); err != nil {
		return err
	}
	r.up.Store(true)
	r.log.Info("docker API ready", zap.String("api_version", r.c.ver()))
	for {
		select {
		case err := <-errc:
			return err
		case ev := <-events:
			if ev.Type == "container" || ev.Type == "network" {
				id := ev.Actor.ID
				if ev.Type == "network" {
					id = ev.Actor.Attributes["container"]
				}
				if id != "" {
					r.refresh(ctx, id)
				}
			}
		}
	}
}

// reload rebuilds the map from the list of running containers.
func (r *Resolver) reload(ctx context.Context) error {
	list, err := r.c.list(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.byAddr, r.addrs = map[netip.Addr][]string{}, map[string][]netip.Addr{}
	r.mu.Unlock()
	for _, e := range list {
		r.refresh(ctx, e.ID)
	}
	return nil
}

// refresh re-reads one container and updates its addresses.
func (r *Resolver) refresh(ctx context.Context, id string) {
	cj, err := r.c.inspect(ctx, id)
	r.update(id, cj, err)
}

// update puts what an inspect of id answered into the map.
func (r *Resolver) update(id string, cj *containerJSON, err error) {
	var addrs []netip.Addr
	if err == nil && cj.State.Running {
		addrs = addressesOf(cj)
		id = cj.ID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.addrs[id] {
		ids := r.byAddr[a][:0]
		for _, x := range r.byAddr[a] {
			if x != id {
				ids = append(ids, x)
			}
		}
		if len(ids) == 0 {
			delete(r.byAddr, a)
		} else {
			r.byAddr[a] = ids
		}
	}
	delete(r.addrs, id)
	if len(addrs) > 0 {
		r.addrs[id] = addrs
		for _, a := range addrs {
			r.byAddr[a] = append(r.byAddr[a], id)
		}
	}
}

func addressesOf(cj *containerJSON) []netip.Addr {
	var out []netip.Addr
	for _, n := range cj.NetworkSettings.Networks {
		for _, s := range []string{n.IPAddress, n.GlobalIPv6Address} {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

// Resolve returns the container whose address the connection (local = the
// sidecar's end, remote = the caller's) comes from. The map names the
// candidate; the API confirms it (running, still holding the address);
// when the two disagree (a replaced container, lagging events) the list is
// asked again. Anything in doubt is an error: conditions fail closed.
func (r *Resolver) Resolve(local, remote netip.AddrPort) (*agent.Container, error) {
	ctr, err := r.resolve(local, remote)
	switch {
	case err == nil:
		r.outcome(OutcomeFound)
	case errors.Is(err, ErrAmbiguous), errors.Is(err, errSharedNet):
		r.outcome(OutcomeAmbiguous)
	case errors.Is(err, ErrUnavailable):
		r.outcome(OutcomeUnavailable)
	case errors.Is(err, ErrBusy):
		r.outcome(OutcomeBusy)
	case errors.Is(err, ErrSpoofed):
		r.outcome(OutcomeSpoofed)
	default:
		r.outcome(OutcomeUnknown)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve container of %s: %w", remote.Addr(), err)
	}
	return ctr, nil
}

func (r *Resolver) resolve(local, remote netip.AddrPort) (*agent.Container, error) {
	addr := remote.Addr().Unmap()
	if addr.IsLoopback() {
		// Never a container's own address (Docker's networks give each
		// container one of its own): no API work for any local user.
		return nil, ErrUnknown
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cj, err := r.confirm(ctx, addr)
	if err != nil {
		return nil, err
	}
	if cj == nil {
		if cj, err = r.scan(ctx, addr); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(cj.HostConfig.NetworkMode, "container:") {
		return nil, errSharedNet
	}
	if r.procNet {
		// A table that cannot be read proves nothing either: fail closed.
		// In our PID namespace the container's pid is its process unless
		// it has just exited (and the number may be reused): no proof.
		if cj.State.Pid <= 0 || !pidOf(cj.State.Pid, cj.ID) {
			return nil, fmt.Errorf("%w (its process %d is not the container's: it has exited)", ErrSpoofed, cj.State.Pid)
		}
		if ok, err := inTCPTable(cj.State.Pid, remote, local); err != nil {
			return nil, fmt.Errorf("%w (its TCP table is unreadable: %v)", ErrSpoofed, err)
		} else if !ok {
			return nil, ErrSpoofed
		}
	}
	img, err := r.imageOf(ctx, cj.Image)
	if err != nil {
		return nil, fmt.Errorf("%w: image %s: %v", ErrUnavailable, cj.Image, err)
	}
	return describe(cj, img), nil
}

// confirm asks the API about the container the map names for addr: nil
// (and no error) when the map names none, or its answer disagrees (a
// replaced container, lagging events), which takes it out of the map.
func (r *Resolver) confirm(ctx context.Context, addr netip.Addr) (*containerJSON, error) {
	r.mu.RLock()
	ids := append([]string(nil), r.byAddr[addr]...)
	r.mu.RUnlock()
	if len(ids) > 1 {
		return nil, ErrAmbiguous
	}
	if len(ids) == 0 || !r.up.Load() {
		return nil, nil
	}
	release, err := r.slot(r.confirms)
	if err != nil {
		return nil, err
	}
	defer release()
	cj, err := r.c.inspect(ctx, ids[0])
	if err == nil && cj.State.Running && holds(cj, addr) {
		return cj, nil
	}
	r.update(ids[0], cj, err) // gone or moved: out of the map
	return nil, nil
}

// scan asks the API itself which container holds addr: the map does not
// know it, or is behind. A container's process can connect before dockerd
// lists it as running, so an address nobody holds is asked about again
// for about a second before it counts as unknown. One address scans once
// at a time: its other connections wait for that scan, then look at the
// map it updated before scanning themselves.
func (r *Resolver) scan(ctx context.Context, addr netip.Addr) (*containerJSON, error) {
	t := time.NewTimer(r.wait)
	defer t.Stop()
	for {
		r.mu.Lock()
		busy, waiting := r.scanning[addr]
		if !waiting {
			done := make(chan struct{})
			r.scanning[addr] = done
			r.mu.Unlock()
			defer func() {
				r.mu.Lock()
				delete(r.scanning, addr)
				r.mu.Unlock()
				close(done)
			}()
			break
		}
		r.mu.Unlock()
		select {
		case <-busy:
		case <-t.C:
			return nil, ErrBusy
		}
		if cj, err := r.confirm(ctx, addr); cj != nil || err != nil {
			return cj, err
		}
	}
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		cj, err := r.scanOnce(ctx, addr)
		if !errors.Is(err, ErrUnknown) || wait > 800*time.Millisecond {
			return cj, err
		}
		select {
		case <-ctx.Done():
			return nil, ErrUnknown
		case <-time.After(wait):
		}
	}
}

// scanOnce is one scan, in a slot of the scans' budget.
func (r *Resolver) scanOnce(ctx context.Context, addr netip.Addr) (*containerJSON, error) {
	release, err := r.slot(r.scans)
	if err != nil {
		return nil, err
	}
	defer release()
	if !r.up.Load() {
		// The map is not kept (starting, or dockerd was down): this also
		// finds out whether the API is back.
		if err := r.c.negotiate(ctx); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	return r.find(ctx, addr)
}

// slot takes a place in a budget, waiting at most r.wait.
func (r *Resolver) slot(budget chan struct{}) (release func(), err error) {
	select {
	case budget <- struct{}{}:
		return func() { <-budget }, nil
	default:
	}
	t := time.NewTimer(r.wait)
	defer t.Stop()
	select {
	case budget <- struct{}{}:
		return func() { <-budget }, nil
	case <-t.C:
		return nil, ErrBusy
	}
}

// find lists the running containers and returns the one holding addr.
func (r *Resolver) find(ctx context.Context, addr netip.Addr) (*containerJSON, error) {
	list, err := r.c.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var found []*containerJSON
	listed := make(map[string]bool, len(list))
	for _, e := range list {
		listed[e.ID] = true
		c, err := r.c.inspect(ctx, e.ID)
		if err == nil && c.State.Running && holds(c, addr) {
			found = append(found, c)
		}
		r.update(e.ID, c, err)
	}
	// Containers the list no longer has leave the map (their events may
	// still be on the way).
	r.mu.RLock()
	var stale []string
	for id := range r.addrs {
		if !listed[id] {
			stale = append(stale, id)
		}
	}
	r.mu.RUnlock()
	for _, id := range stale {
		r.refresh(ctx, id)
	}
	switch len(found) {
	case 0:
		return nil, ErrUnknown
	case 1:
		return found[0], nil
	default:
		return nil, ErrAmbiguous
	}
}

// holds reports whether the container has addr on one of its networks.
func holds(cj *containerJSON, addr netip.Addr) bool {
	for _, a := range addressesOf(cj) {
		if a == addr {
			return true
		}
	}
	return false
}

func (r *Resolver) imageOf(ctx context.Context, id string) (*imageJSON, error) {
	r.mu.RLock()
	img := r.images[id]
	r.mu.RUnlock()
	if img != nil {
		return img, nil
	}
	img, err := r.c.image(ctx, id)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.images) >= 1024 {
		clear(r.images)
	}
	r.images[id] = img
	r.mu.Unlock()
	return img, nil
}

// describe is the agent's view of a container: its labels without those
// it has only because its image has them (same key, same value).
func describe(cj *containerJSON, img *imageJSON) *agent.Container {
	own := map[string]string{}
	for k, v := range cj.Config.Labels {
		if iv, ok := img.Config.Labels[k]; ok && iv == v {
			continue
		}
		own[k] = v
	}
	return &agent.Container{
		ID: cj.ID, Name: strings.TrimPrefix(cj.Name, "/"),
		Image: cj.Config.Image, ImageID: cj.Image, RepoDigests: img.RepoDigests,
		Labels: own,
	}
}

// Inspect describes the container with this name or id (for explain), and
// returns its first address.
func (r *Resolver) Inspect(ctx context.Context, name string) (*agent.Container, netip.Addr, error) {
	if r.c.ver() == "" {
		if err := r.c.negotiate(ctx); err != nil {
			return nil, netip.Addr{}, err
		}
	}
	cj, err := r.c.inspect(ctx, name)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	img, err := r.c.image(ctx, cj.Image)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	var addr netip.Addr
	if as := addressesOf(cj); len(as) > 0 {
		addr = as[0]
	}
	return describe(cj, img), addr, nil
}

// inTCPTable reports whether the container's own network namespace (read
// through its init process) holds the connection from caller to sidecar:
// on a shared bridge, a container with NET_RAW can send packets from
// another's address, but the connection then lives in its own table.
// Only an entry whose state says the sidecar's end still exists counts:
// ESTABLISHED, or FIN_WAIT1/2 (the caller has sent its request and shut
// its side). A TIME_WAIT entry outlives the sidecar's end, so a spoofer
// could open the same 4-tuple anew while it lingers.
func inTCPTable(pid int, caller, sidecar netip.AddrPort) (bool, error) {
	name := "/proc/" + strconv.Itoa(pid) + "/net/tcp"
	if caller.Addr().Is6() && !caller.Addr().Is4In6() {
		name += "6"
	}
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	want := procAddr(caller) + " " + procAddr(sidecar)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 3 && fields[1]+" "+fields[2] == want && liveStates[fields[3]] {
			return true, nil
		}
	}
	return false, sc.Err()
}

// liveStates are /proc/net/tcp's st values (include/net/tcp_states.h) of
// a client socket whose peer's end must still exist.
var liveStates = map[string]bool{"01": true, "04": true, "05": true} // ESTABLISHED, FIN_WAIT1, FIN_WAIT2

// procAddr formats an IPv4 address and port as /proc/net/tcp does
// (little-endian hex address, big-endian hex port).
func procAddr(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], ap.Port())
	}
	b := a.As16()
	var s strings.Builder
	for i := 0; i < 16; i += 4 {
		fmt.Fprintf(&s, "%02X%02X%02X%02X", b[i+3], b[i+2], b[i+1], b[i])
	}
	return fmt.Sprintf("%s:%04X", s.String(), ap.Port())
}

// inInitialPIDNamespace reports whether the sidecar is in the host's PID
// namespace: the kernel's initial one has a fixed inode number
// (PROC_PID_INIT_INO, include/linux/proc_ns.h). NSpid in /proc/self/status
// cannot tell: a container's own /proc shows only the levels from its
// namespace down, one entry. (attest/proc has the same test; DESIGN.md
// keeps the attest packages apart.)
func inInitialPIDNamespace() bool {
	link, err := os.Readlink("/proc/self/ns/pid")
	return err == nil && link == "pid:[4026531836]"
}

// pidOf reports whether pid, in the sidecar's PID namespace, is the
// container's process: its cgroup path names the container's id. (A
// sidecar in a PID namespace of its own may have an unrelated pid of that
// number.)
func pidOf(pid int, id string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	return err == nil && id != "" && strings.Contains(string(b), id)
}
