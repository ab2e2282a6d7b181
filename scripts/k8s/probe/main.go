// Command probe is the cluster test's workload and measuring tool
// (scripts/k8s-test.sh):
//
//	probe sdk ROLE_ARN       the AWS SDK's default chain (ECS provider:
//	                         AWS_CONTAINER_CREDENTIALS_FULL_URI and
//	                         AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), then
//	                         GetCallerIdentity and AssumeRole into ROLE_ARN
//	                         against AWS_ENDPOINT_URL_STS; prints caller= and
//	                         chained= lines
//	probe status             GET $AWS_CONTAINER_CREDENTIALS_FULL_URI with the
//	                         token file (if any); prints status=CODE
//	probe sleep              waits for SIGTERM (a pod whose token the host reads)
//	probe until URL TOKENFILE STATUS TIMEOUT [DATALINK]
//	                         polls URL until it answers STATUS; with DATALINK
//	                         (a ConfigMap volume's ..data symlink) the time is
//	                         measured from the link's next change; prints ms=N
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Println("error=" + strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: probe sdk|status|sleep|until")
	}
	switch args[0] {
	case "sdk":
		if len(args) != 2 {
			return fmt.Errorf("usage: probe sdk ROLE_ARN")
		}
		return sdk(args[1])
	case "status":
		code, err := get(os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"), os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
		if err != nil {
			return err
		}
		fmt.Printf("status=%d\n", code)
		return nil
	case "sleep":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		return nil
	case "until":
		if len(args) < 5 {
			return fmt.Errorf("usage: probe until URL TOKENFILE STATUS TIMEOUT [DATALINK]")
		}
		return until(args[1], args[2], args[3], args[4], args[5:])
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

func sdk(chainARN string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	client := sts.NewFromConfig(cfg)
	id, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("get caller identity: %w", err)
	}
	fmt.Println("caller=" + aws.ToString(id.Arn))
	out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(chainARN), RoleSessionName: aws.String("chained")})
	if err != nil {
		return fmt.Errorf("assume role %s: %w", chainARN, err)
	}
	c := out.Credentials
	chained := sts.NewFromConfig(cfg, func(o *sts.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	})
	id, err = chained.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("chained get caller identity: %w", err)
	}
	fmt.Println("chained=" + aws.ToString(id.Arn))
	return nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func get(url, tokenFile string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if tokenFile != "" {
		tok, err := os.ReadFile(tokenFile)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", string(tok))
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func until(url, tokenFile, status, timeout string, link []string) error {
	want, err := strconv.Atoi(status)
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(timeout)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	start := time.Now()
	if len(link) == 1 {
		// Measure from the kubelet's ..data swap, not from kubectl.
		first, err := os.Readlink(link[0])
		if err != nil {
			return err
		}
		for {
			cur, err := os.Readlink(link[0])
			if err == nil && cur != first {
				start = time.Now()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not change within %s", link[0], d)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for {
		code, err := get(url, tokenFile)
		if err == nil && code == want {
			fmt.Printf("ms=%d\n", time.Since(start).Milliseconds())
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %d within %s (last %d, %v)", want, d, code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
