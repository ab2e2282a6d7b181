// Package docker resolves a caller's address to the Docker container it
// belongs to, through the Engine API on a unix socket: an address →
// container map kept from the API's container list and events stream, each
// answer confirmed by inspecting the container (events lag: a container
// removed and replaced on the same address is never taken for the old one),
// labels counted only as set on the container itself (not inherited from
// its image), and anything ambiguous — an address two containers claim, a
// container sharing another's network namespace — resolving to nothing.
//
// The client is a small one of our own over the documented REST API: the
// four GET endpoints it needs do not justify the official client's
// dependencies (OpenTelemetry, containerd's errdefs, distribution's
// reference parser, go-connections, …).
package docker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// minAPI is the oldest Engine API the client speaks; maxAPI the newest it
// asks for (current dockerd refuses clients below 1.44, Debian's speaks 1.41).
const (
	minAPI = "1.41"
	maxAPI = "1.47"
)

// client talks to one Engine API socket.
type client struct {
	http    *http.Client
	version atomic.Value // string: negotiated, e.g. "1.41"
}

// ver is the negotiated API version ("" before negotiate).
func (c *client) ver() string {
	v, _ := c.version.Load().(string)
	return v
}

// errNotFound is the API's 404.
var errNotFound = errors.New("not found")

func newClient(host string) (*client, error) {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return nil, fmt.Errorf("docker host %q: only unix:///PATH is supported", host)
	}
	path := u.Path
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	return &client{http: &http.Client{Transport: tr}}, nil
}

// negotiate asks /_ping for the daemon's API version and settles on the
// highest both speak.
func (c *client) negotiate(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker ping: status %d", resp.StatusCode)
	}
	v := resp.Header.Get("Api-Version")
	if v == "" {
		return errors.New("docker ping: no API-Version header")
	}
	if versionLess(v, minAPI) {
		return fmt.Errorf("docker API %s is older than %s", v, minAPI)
	}
	if versionLess(maxAPI, v) {
		v = maxAPI
	}
	c.version.Store(v)
	return nil
}

// versionLess compares "1.41"-style versions.
func versionLess(a, b string) bool {
	var am, an, bm, bn int
	fmt.Sscanf(a, "%d.%d", &am, &an)
	fmt.Sscanf(b, "%d.%d", &bm, &bn)
	return am < bm || (am == bm && an < bn)
}

func (c *client) get(ctx context.Context, path string, query url.Values, out any) error {
	u := "http://docker/v" + c.ver() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("docker GET %s: %w", path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("docker GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("docker GET %s: %w", path, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("docker GET %s: status %d: %s", path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(out); err != nil {
		return fmt.Errorf("docker GET %s: decode: %w", path, err)
	}
	return nil
}

// The parts of the API's documents the resolver reads.
type (
	listEntry struct {
		ID string `json:"Id"`
	}
	containerJSON struct {
		ID    string `json:"Id"`
		Name  string `json:"Name"`
		Image string `json:"Image"` // the image ID
		State struct {
			Running bool `json:"Running"`
			Pid     int  `json:"Pid"`
		} `json:"State"`
		Config struct {
			Image  string            `json:"Image"` // the reference it was created from
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
		HostConfig struct {
			NetworkMode string `json:"NetworkMode"`
		} `json:"HostConfig"`
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress         string `json:"IPAddress"`
				GlobalIPv6Address string `json:"GlobalIPv6Address"`
			} `json:"Networks"`
		} `json:"NetworkSettings"`
	}
	imageJSON struct {
		ID          string   `json:"Id"`
		RepoDigests []string `json:"RepoDigests"`
		Config      struct {
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	event struct {
		Type   string `json:"Type"`
		Action string `json:"Action"`
		Actor  struct {
			ID         string            `json:"ID"`
			Attributes map[string]string `json:"Attributes"`
		} `json:"Actor"`
	}
)

func (c *client) list(ctx context.Context) ([]listEntry, error) {
	var out []listEntry
	err := c.get(ctx, "/containers/json", nil, &out)
	return out, err
}

func (c *client) inspect(ctx context.Context, id string) (*containerJSON, error) {
	var out containerJSON
	if err := c.get(ctx, "/containers/"+url.PathEscape(id)+"/json", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *client) image(ctx context.Context, id string) (*imageJSON, error) {
	var out imageJSON
	if err := c.get(ctx, "/images/"+url.PathEscape(id)+"/json", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// events streams container and network events to fn until ctx ends or the
// stream breaks. ready is called once the stream is open.
func (c *client) events(ctx context.Context, ready func(), fn func(event)) error {
	filters := `{"type":["container","network"]}`
	u := "http://docker/v" + c.ver() + "/events?filters=" + url.QueryEscape(filters)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("docker events: %w", err)
	}
	// No overall timeout: the stream is long-lived (ctx ends it).
	hc := &http.Client{Transport: c.http.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("docker events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker events: status %d", resp.StatusCode)
	}
	ready()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("docker events: %w", err)
		}
		fn(ev)
	}
}
