// Package awssts is the agent.Source of `sts.mode: aws`: AssumeRole and
// AssumeRoleWithWebIdentity against real AWS STS (or any STS endpoint, such
// as the embedded emulator) through aws-sdk-go-v2. Its own source
// credentials come from the SDK's default chain or a named profile — never
// from the sidecar itself.
package awssts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
)

// Options configure the source.
type Options struct {
	// Region of the STS client (required).
	Region string
	// Endpoint overrides the STS endpoint ("" = the SDK's default).
	Endpoint string
	// Profile names the shared-config profile of the sidecar's own
	// credentials ("" = the default chain).
	Profile string
	// OwnListeners are the sidecar's credential listener addresses: the
	// sidecar must never source its own credentials from them.
	OwnListeners []string
	// Getenv reads the environment (os.Getenv by default).
	Getenv func(string) string
	// CallTimeout bounds one logical call including the SDK's own retries
	// (default 10s); the agent's deadline applies too.
	CallTimeout time.Duration
	Logger      *zap.Logger
}

// Source assumes roles through STS.
type Source struct {
	base aws.Config
	// sts is the one STS client; calls that act as another identity (a
	// chain's previous hop, web identity) pass per-call options.
	sts *sts.Client
	// retryable is the STS client's own retry policy (its standard
	// retryer extended with STS's IDPCommunicationError), asked whether an
	// error is worth another logical call.
	retryable func(error) bool
	opts      Options
	log       *zap.Logger
	timeout   time.Duration
}

var _ agent.Source = (*Source)(nil)

// Well-known endpoints SDKs use when nothing overrides them.
const (
	defaultIMDSAddr      = "169.254.169.254:80"
	defaultContainerAddr = "169.254.170.2:80"
)

// SelfReferencingEnv lists the environment variables that would make the
// SDK's default chain fetch the sidecar's credentials from the sidecar
// itself (its own listeners). The caller unsets them before New: the SDK
// reads the process environment directly.
func SelfReferencingEnv(own []string, getenv func(string) string) []string {
	var out []string
	if u := getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"); u != "" && pointsAt(u, own) {
		out = append(out, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
	}
	if getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" && listensOn(own, defaultContainerAddr) {
		out = append(out, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
	}
	if u := getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"); u != "" && pointsAt(u, own) {
		out = append(out, "AWS_EC2_METADATA_SERVICE_ENDPOINT")
	}
	return out
}

// pointsAt reports whether URL u names one of the listener addresses.
func pointsAt(u string, own []string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return false
	}
	host, port := p.Hostname(), p.Port()
	if port == "" {
		port = "80"
		if p.Scheme == "https" {
			port = "443"
		}
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	return listensOn(own, net.JoinHostPort(host, port))
}

func listensOn(own []string, addr string) bool {
	for _, l := range own {
		h, p, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		if h == "localhost" {
			h = "127.0.0.1"
		}
		if net.JoinHostPort(h, p) == addr {
			return true
		}
	}
	return false
}

// New loads the sidecar's own credentials configuration. IMDS is left out
// of the chain when the sidecar itself serves IMDS at the address the SDK
// would use, so that a missing source fails at start instead of the sidecar
// asking itself.
func New(ctx context.Context, o Options) (*Source, error) {
	if o.Region == "" {
		return nil, errors.New("awssts: a region is required")
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if left := SelfReferencingEnv(o.OwnListeners, o.Getenv); len(left) > 0 {
		return nil, fmt.Errorf("awssts: %s points at this sidecar's own listener; unset it for the sidecar (its source credentials cannot come from itself)", strings.Join(left, ", "))
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(o.Region)}
	if o.Profile != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(o.Profile))
	}
	imdsEndpoint := o.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	if imdsEndpoint == "" && listensOn(o.OwnListeners, defaultIMDSAddr) {
		o.Logger.Info("IMDS left out of the sidecar's own credential chain: the sidecar serves 169.254.169.254 itself")
		loadOpts = append(loadOpts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("awssts: load the sidecar's own AWS configuration: %w", err)
	}
	s := &Source{base: cfg, opts: o, log: o.Logger, timeout: o.CallTimeout}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	s.sts = sts.NewFromConfig(cfg, func(so *sts.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	s.retryable = s.sts.Options().Retryer.IsErrorRetryable
	return s, nil
}

// CheckSource retrieves the sidecar's own credentials once, so a missing
// source fails start-up with a clear error rather than every caller later.
func (s *Source) CheckSource(ctx context.Context) error {
	if _, err := s.base.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("awssts: the sidecar has no source credentials (default chain%s): %w", profileNote(s.opts.Profile), err)
	}
	return nil
}

func profileNote(p string) string {
	if p == "" {
		return ""
	}
	return ", profile " + p
}

// as returns the per-call options that make the one client act as creds
// (nil: the sidecar itself) or, for web identity, as nobody.
func as(creds *agent.Credentials, anonymous bool) []func(*sts.Options) {
	switch {
	case anonymous:
		return []func(*sts.Options){func(o *sts.Options) { o.Credentials = aws.AnonymousCredentials{} }}
	case creds != nil:
		p := credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
		return []func(*sts.Options){func(o *sts.Options) { o.Credentials = p }}
	}
	return nil
}

// Retrieve makes one logical STS call (the SDK's standard retryer makes a
// few quick attempts inside it).
func (s *Source) Retrieve(ctx context.Context, req agent.Request) (*agent.Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if req.WebIdentityTokenFile != "" {
		return s.webIdentity(ctx, req)
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(req.RoleARN),
		RoleSessionName: aws.String(req.SessionName),
	}
	if req.Duration > 0 {
		in.DurationSeconds = aws.Int32(int32(req.Duration / time.Second))
	}
	if req.ExternalID != "" {
		in.ExternalId = aws.String(req.ExternalID)
	}
	if req.SourceIdentity != "" {
		in.SourceIdentity = aws.String(req.SourceIdentity)
	}
	if req.SessionPolicy != "" {
		in.Policy = aws.String(req.SessionPolicy)
	}
	for _, a := range req.PolicyARNs {
		in.PolicyArns = append(in.PolicyArns, ststypes.PolicyDescriptorType{Arn: aws.String(a)})
	}
	for _, t := range req.Tags {
		in.Tags = append(in.Tags, ststypes.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)})
	}
	in.TransitiveTagKeys = req.TransitiveTagKeys
	out, err := s.sts.AssumeRole(ctx, in, as(req.Via, false)...)
	if err != nil {
		return nil, s.classify("AssumeRole", req.RoleARN, err)
	}
	return s.convert(req, out.Credentials, out.AssumedRoleUser)
}

func (s *Source) webIdentity(ctx context.Context, req agent.Request) (*agent.Credentials, error) {
	// Re-read on every call, as the SDKs do: the token file is rotated.
	tok, err := os.ReadFile(req.WebIdentityTokenFile)
	if err != nil {
		return nil, &agent.SourceError{Code: "WebIdentityTokenUnreadable", Message: fmt.Sprintf("read web identity token file: %v", errors.Unwrap(err)), Retryable: true, Err: err}
	}
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(req.RoleARN),
		RoleSessionName:  aws.String(req.SessionName),
		WebIdentityToken: aws.String(strings.TrimSpace(string(tok))),
	}
	if req.Duration > 0 {
		in.DurationSeconds = aws.Int32(int32(req.Duration / time.Second))
	}
	if req.SessionPolicy != "" {
		in.Policy = aws.String(req.SessionPolicy)
	}
	for _, a := range req.PolicyARNs {
		in.PolicyArns = append(in.PolicyArns, ststypes.PolicyDescriptorType{Arn: aws.String(a)})
	}
	out, err := s.sts.AssumeRoleWithWebIdentity(ctx, in, as(nil, true)...)
	if err != nil {
		return nil, s.classify("AssumeRoleWithWebIdentity", req.RoleARN, err)
	}
	return s.convert(req, out.Credentials, out.AssumedRoleUser)
}

func (s *Source) convert(req agent.Request, c *ststypes.Credentials, u *ststypes.AssumedRoleUser) (*agent.Credentials, error) {
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return nil, &agent.SourceError{Code: "MalformedResponse", Message: "STS answered without complete credentials", Retryable: true}
	}
	out := &agent.Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    *c.SessionToken,
		Expiration:      c.Expiration.UTC(),
		Issued:          time.Now().UTC(),
		RoleARN:         req.RoleARN,
		AccountID:       agent.AccountOf(req.RoleARN),
	}
	if u != nil && u.Arn != nil {
		out.AssumedRoleARN = *u.Arn
	}
	return out, nil
}

// classify maps an SDK error to the agent's classes, keeping STS's code and
// message (which carry no secrets). Whether an STS error is retryable is
// the STS client's own retryer's call (throttling codes, transient 5xx,
// IDPCommunicationError): access and validation errors are final, asking
// again changes nothing.
func (s *Source) classify(op, role string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		return &agent.SourceError{Code: api.ErrorCode(), Message: api.ErrorMessage(), Retryable: s.retryable(err), Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &agent.SourceError{Code: "Timeout", Message: op + " did not answer in time", Retryable: true, Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &agent.SourceError{Code: "Canceled", Message: op + " was canceled", Retryable: true, Err: err}
	}
	// Network errors, missing source credentials and the like.
	return &agent.SourceError{Code: "RequestFailed", Message: fmt.Sprintf("%s %s: %v", op, role, err), Retryable: true, Err: err}
}
