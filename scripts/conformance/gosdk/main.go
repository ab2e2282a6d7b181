// Command gosdk gets credentials through aws-sdk-go-v2's unmodified default
// chain (config.LoadDefaultConfig) and prints the access key id, for
// scripts/conformance.sh.
//
//	gosdk                  print the key id once
//	gosdk -rollover REFKEY keep one credentials cache: fetch, then fetch again
//	                       every 2s until the key changes; print "first K",
//	                       "before R", "second K", "after R", where R is what
//	                       REFKEY (the sidecar fetched with curl) prints
//
// It has its own go.mod because the main module does not require
// github.com/aws/aws-sdk-go-v2/config.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gosdk:", err)
		os.Exit(1)
	}
}

func run() error {
	refkey := flag.String("rollover", "", "reference-key command: run the rollover check")
	maxWait := flag.Duration("max-wait", 4*time.Minute, "longest wait for the SDK to refresh")
	flag.Parse()
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load default config: %w", err)
	}
	c1, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve: %w", err)
	}
	if *refkey == "" {
		fmt.Println(c1.AccessKeyID)
		return nil
	}
	fmt.Printf("first %s\n", c1.AccessKeyID)
	// Ask the SDK's cache every 2s until it hands out another key. Its
	// Expires is not the credentials' own: the cache subtracts its expiry
	// window (5 minutes for the container endpoint, none for IMDS), so the
	// refresh point is the SDK's to decide, which is what is checked.
	start := time.Now()
	for {
		time.Sleep(2 * time.Second)
		before, err := ref(*refkey)
		if err != nil {
			return err
		}
		c2, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return fmt.Errorf("retrieve after %s: %w", time.Since(start).Round(time.Second), err)
		}
		after, err := ref(*refkey)
		if err != nil {
			return err
		}
		if c2.AccessKeyID != c1.AccessKeyID || time.Since(start) > *maxWait {
			if c2.AccessKeyID != c1.AccessKeyID {
				fmt.Printf("note the SDK refreshed %s after the first fetch\n", time.Since(start).Round(time.Second))
			} else {
				fmt.Printf("note no refresh within %s\n", *maxWait)
			}
			fmt.Printf("before %s\nsecond %s\nafter %s\n", before, c2.AccessKeyID, after)
			return nil
		}
	}
}

func ref(cmd string) (string, error) {
	out, err := exec.Command(cmd).Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	return strings.TrimSpace(string(out)), nil
}
