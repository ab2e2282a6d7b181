// Command sdkcaller is an unmodified AWS SDK client: it takes credentials
// from aws-sdk-go-v2's default chain, asks STS who it is, and prints the
// ARN. scripts/nspawn-test.sh runs it as billing.service and by hand.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdkcaller: load default config:", err)
		os.Exit(1)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdkcaller: get caller identity:", err)
		os.Exit(1)
	}
	fmt.Println(*out.Arn)
}
