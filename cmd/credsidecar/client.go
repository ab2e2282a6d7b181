package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/credsidecar/credsidecar/config"
)

// The creds and exec commands mint nothing: they ask the running sidecar,
// whose trust rules apply to the calling user (its uid, or the token it
// presents), so no local user gains a role the config does not give them.

// sidecarURL is the ECS role URL on the config's first listener.
func sidecarURL(configPath, role string) (string, error) {
	// Only the listen address is needed: parse without resolving secrets,
	// which a normal user may not be able to read (env:, root-only file:).
	data, err := os.ReadFile(configPath)
	if err != nil {
		return "", fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(cfg.Listen[0])
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", cfg.Listen[0], err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/role/" + url.PathEscape(role)}).String(), nil
}

// processCredentials is the credential_process output format.
type processCredentials struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string `json:",omitempty"`
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("token file %s must hold one non-empty line", path)
	}
	return tok, nil
}

// newSidecarClient returns a client that dials the sidecar directly with
// dial (nil: a plain net.Dialer). http.DefaultClient honours HTTP_PROXY:
// for the documented 169.254.170.2 listener the bearer token and the
// credentials would go to the proxy (the hostile-users issue).
func newSidecarClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableKeepAlives: true},
		// A redirect would carry the request somewhere the sidecar is not.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetchCreds asks the sidecar for role over its ECS endpoint.
func fetchCreds(ctx context.Context, client *http.Client, u, token string) (*processCredentials, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the sidecar at %s (is `credsidecar serve` running?): %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read the sidecar's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return nil, fmt.Errorf("the sidecar refused (%d %s): %s", resp.StatusCode, e.Code, e.Message)
		}
		return nil, fmt.Errorf("the sidecar answered %s", resp.Status)
	}
	var c struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      string
	}
	if err := json.Unmarshal(body, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return nil, errors.New("the sidecar's answer holds no credentials")
	}
	return &processCredentials{Version: 1, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.Token, Expiration: c.Expiration}, nil
}

const credsUsage = `Usage: credsidecar creds --role NAME [--config FILE] [--token-file F]

Prints one role's credentials from the running sidecar as credential_process
JSON, for ~/.aws/config:

  [profile app]
  credential_process = credsidecar creds --role app

The sidecar's trust rules apply to the calling user (uid), or to the token in
--token-file.

`

func runCreds(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	var role, tokenFile string
	fs := newFlagSet("creds", stderr, credsUsage)
	c.register(fs)
	fs.StringVar(&role, "role", "", "role name (required)")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the bearer token to present")
	if err := parse(fs, args); err != nil {
		return err
	}
	if role == "" {
		return &usageError{"creds: --role is required"}
	}
	u, err := sidecarURL(c.configPath, role)
	if err != nil {
		return err
	}
	var token string
	if tokenFile != "" {
		if token, err = readToken(tokenFile); err != nil {
			return err
		}
	}
	pc, err := fetchCreds(ctx, newSidecarClient(nil), u, token)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(pc)
}

const execUsage = `Usage: credsidecar exec --role NAME [--config FILE] [--token-file F] -- CMD [ARG...]

Runs CMD with AWS_CONTAINER_CREDENTIALS_FULL_URI pointing at the running
sidecar's /role/NAME (and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE when
--token-file is given). It mints nothing: the sidecar decides, by the calling
user's uid or that token, whether the role is theirs.

`

// exitStatusError carries the child's exit status through run.
type exitStatusError struct{ code int }

func (e *exitStatusError) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }

func runExec(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	var role, tokenFile string
	fs := newFlagSet("exec", stderr, execUsage)
	c.register(fs)
	fs.StringVar(&role, "role", "", "role name (required)")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the bearer token the command's SDK presents")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	cmdArgs := fs.Args()
	if role == "" || len(cmdArgs) == 0 {
		return &usageError{"exec: --role and a command (after --) are required"}
	}
	u, err := sidecarURL(c.configPath, role)
	if err != nil {
		return err
	}
	env := []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + u}
	// The command's SDK must dial the sidecar directly too: SDKs honour
	// HTTP_PROXY for the container endpoint, so the sidecar's host goes into
	// NO_PROXY. Both spellings get one list — the union of what the user
	// had in either, plus the host — since tools differ in which they read
	// (curl and Python prefer the lower-case one).
	noProxy := withHost(withList(os.Getenv("NO_PROXY"), os.Getenv("no_proxy")), hostOf(u))
	env = append(env, "NO_PROXY="+noProxy, "no_proxy="+noProxy)
	if tokenFile != "" {
		abs, err := filepath.Abs(tokenFile)
		if err != nil {
			return err
		}
		if _, err := readToken(abs); err != nil {
			return err
		}
		env = append(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="+abs)
	}
	// Anything that would win over the container provider in an SDK's
	// chain (static keys, a profile, RELATIVE_URI which Go and botocore
	// prefer) is removed, so CMD really uses the role.
	drop := map[string]bool{
		"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
		"AWS_PROFILE": true, "AWS_DEFAULT_PROFILE": true, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": true,
		"AWS_CONTAINER_AUTHORIZATION_TOKEN": true, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": true,
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": true, "AWS_WEB_IDENTITY_TOKEN_FILE": true, "AWS_ROLE_ARN": true,
		"NO_PROXY": true, "no_proxy": true,
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &exitStatusError{code: ee.ExitCode()}
		}
		return fmt.Errorf("exec %s: %w", cmdArgs[0], err)
	}
	return nil
}

// hostOf is the host of URL u (no port, no brackets).
func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

// withList appends the entries of b that a lacks.
func withList(a, b string) string {
	for _, h := range strings.Split(b, ",") {
		if h = strings.TrimSpace(h); h != "" {
			a = withHost(a, h)
		}
	}
	return a
}

// withHost appends host to a NO_PROXY list unless it is already there.
func withHost(list, host string) string {
	for _, h := range strings.Split(list, ",") {
		if strings.TrimSpace(h) == host {
			return list
		}
	}
	if list == "" {
		return host
	}
	return list + "," + host
}
