// Command app is the demo workload of the Compose example and of the
// network-namespace end-to-end test: an unmodified aws-sdk-go-v2 program.
// It gets credentials through the SDK's default chain (whatever the
// environment points it at: the ECS container endpoint, IMDS, ...), prints
// where they came from and the access key id, and — when an STS endpoint is
// reachable (AWS_ENDPOINT_URL_STS, e.g. credsidecar's embedded STS) — the
// caller's ARN from sts:GetCallerIdentity, which names the assumed role and
// its session.
//
// Output, one line, space-separated key=value:
//
//	source=CredentialsEndpointProvider key_id=ASIA... expires=2026-01-02T03:04:05Z arn=arn:aws:sts::000000000000:assumed-role/app/...
//
// When no STS listens at the endpoint, arn= is replaced by sts=unreachable.
// Without credentials it prints `error status=403` (the HTTP status the
// credential endpoint answered, when it answered; the SDK's message alone
// does not say) and the error on stderr, and exits 1.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor()+30*time.Second)
	err := run(ctx, os.Stdout)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

// waitFor is how long to wait for the sidecar to come up ($APP_WAIT, a Go
// duration; default 30s): in Compose the app may start first.
func waitFor() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("APP_WAIT")); err == nil && d >= 0 {
		return d
	}
	return 30 * time.Second
}

func run(ctx context.Context, stdout io.Writer) error {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load SDK config: %w", err)
	}
	creds, err := retrieve(ctx, cfg.Credentials, waitFor())
	if err != nil {
		var status interface{ HTTPStatusCode() int }
		if errors.As(err, &status) {
			fmt.Fprintf(stdout, "error status=%d\n", status.HTTPStatusCode())
		} else {
			fmt.Fprintln(stdout, "error status=none")
		}
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	fields := []string{
		"source=" + creds.Source,
		"key_id=" + creds.AccessKeyID,
		"expires=" + creds.Expires.UTC().Format(time.RFC3339),
	}
	if os.Getenv("AWS_ENDPOINT_URL_STS") != "" || os.Getenv("AWS_ENDPOINT_URL") != "" {
		out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		switch {
		case err == nil:
			fields = append(fields, "arn="+aws.ToString(out.Arn))
		case unreachable(err):
			fields = append(fields, "sts=unreachable")
		default:
			fmt.Fprintln(stdout, strings.Join(fields, " "))
			return fmt.Errorf("sts:GetCallerIdentity: %w", err)
		}
	}
	_, err = fmt.Fprintln(stdout, strings.Join(fields, " "))
	return err
}

// retrieve asks the credential chain until it answers or wait is over,
// retrying only while nothing listens yet: an HTTP answer (403, 401, 404, ...)
// is final.
func retrieve(ctx context.Context, p aws.CredentialsProvider, wait time.Duration) (aws.Credentials, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := p.Retrieve(ctx)
		if err == nil || !unreachable(err) || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return c, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// unreachable reports whether err is a connection that never got an answer.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || (errors.As(err, &op) && op.Op == "dial")
}
