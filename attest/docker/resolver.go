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
	// MaxLookups bounds the API calls lookups make at once (0 = 4); Wait
	// bounds how long a lookup waits for a slot (0 = 2s).
	MaxLookups int
	Wait       time.Duration
	// Outcome, when set, counts each resolution's outcome.
	Outcome func(outcome string)
}

// Resolver maps caller addresses to containers. Run keeps its map.
type Resolver struct {
	c       *client
	log     *zap.Logger
	wait    time.Duration
	sem     chan struct{}
	outcome func(string)
	// procNet: the sidecar shares the containers' PID namespace (the
	// host's), so it can read a container's own TCP table.
	procNet bool

	mu     sync.RWMutex
	byAddr map[netip.Addr][]string // address -> ids of running containers holding it
	addrs  map[string][]netip.Addr // id -> its addresses
	images map[string]*imageJSON   // by image ID (immutable)
	up     atomic.Bool             // the events stream is open and the list loaded
}

// New builds a Resolver; nothing is asked of the API until Run.
func New(opts Options) (*Resolver, error) {
	c, err := newClient(opts.Host)
	if err != nil {
		return nil, err
	}
	r := &Resolver{c: c, log: opts.Logger, wait: opts.Wait, outcome: opts.Outcome,
		byAddr: map[netip.Addr][]string{}, addrs: map[string][]netip.Addr{}, images: map[string]*imageJSON{}}
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
	r.sem = make(chan struct{}, n)
	if r.outcome == nil {
		r.outcome = func(string) {}
	}
	// A PID namespace of our own shows NSpid with more than one entry.
	r.procNet = !inChildPIDNamespace()
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
	r.mu.RLock()
	ids := append([]string(nil), r.byAddr[addr]...)
	r.mu.RUnlock()
	if len(ids) > 1 {
		return nil, ErrAmbiguous
	}
	// The bound on API work unidentified callers can trigger.
	t := time.NewTimer(r.wait)
	defer t.Stop()
	select {
	case r.sem <- struct{}{}:
	case <-t.C:
		return nil, ErrBusy
	}
	defer func() { <-r.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !r.up.Load() {
		// The map is not kept (starting, or dockerd was down): ask the
		// API directly, which also finds out whether it is back.
		if err := r.c.negotiate(ctx); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		ids = nil
	}
	var cj *containerJSON
	if len(ids) == 1 {
		c, err := r.c.inspect(ctx, ids[0])
		if err == nil && c.State.Running && holds(c, addr) {
			cj = c
		} else {
			r.refresh(ctx, ids[0]) // gone or moved: out of the map
		}
	}
	if cj == nil {
		// Unknown to the map, or the map is behind: ask the API itself.
		// A container's process can connect before dockerd lists it as
		// running: an address nobody holds is asked about again for
		// about a second before it counts as unknown.
		var err error
		for wait := 50 * time.Millisecond; ; wait *= 2 {
			cj, err = r.find(ctx, addr)
			if !errors.Is(err, ErrUnknown) || wait > 800*time.Millisecond {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ErrUnknown
			case <-time.After(wait):
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(cj.HostConfig.NetworkMode, "container:") {
		return nil, errSharedNet
	}
	if r.procNet && cj.State.Pid > 0 && pidOf(cj.State.Pid, cj.ID) {
		// A table that cannot be read proves nothing either: fail closed.
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
		r.refresh(ctx, e.ID)
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
		if len(fields) > 2 && fields[1]+" "+fields[2] == want {
			return true, nil
		}
	}
	return false, sc.Err()
}

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

func inChildPIDNamespace() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			return len(strings.Fields(rest)) > 1
		}
	}
	return false
}

// pidOf reports whether pid, in the sidecar's PID namespace, is the
// container's process: its cgroup path names the container's id. (A
// sidecar in a PID namespace of its own may have an unrelated pid of that
// number.)
func pidOf(pid int, id string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	return err == nil && id != "" && strings.Contains(string(b), id)
}
