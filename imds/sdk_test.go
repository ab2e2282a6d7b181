package imds

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	sdkimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/credsidecar/credsidecar/agent"
)

// cleanAWSEnv leaves the SDK's default chain nothing to find but what the
// test sets: no keys, no profile, no container or web-identity settings,
// shared files that do not exist, a HOME of its own, and no proxy.
func cleanAWSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
		"AWS_EC2_METADATA_V1_DISABLED", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_CA_BUNDLE",
		"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_SDK_LOAD_CONFIG",
		"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy",
	} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-such-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-such-credentials"))
	t.Setenv("HOME", dir)
	t.Setenv("AWS_REGION", "us-east-1")
}

// sdkRetrieve runs the SDK's own default chain, as an unmodified program does.
func sdkRetrieve(t *testing.T) aws.Credentials {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("Credentials.Retrieve: %v", err)
	}
	return creds
}

// issued is what the agent has for caller and role: the credentials the
// sidecar handed out (served from its cache, no new source call).
func issued(t *testing.T, f *fixture, c *agent.Caller, role string) *agent.Credentials {
	t.Helper()
	creds, err := f.agent.Credentials(context.Background(), c, role)
	if err != nil {
		t.Fatalf("agent.Credentials(%q): %v", role, err)
	}
	return creds
}

// containerExpiryWindow is the ExpiryWindow the Go SDK's config package
// gives the container provider's credential cache: the cache reports
// Expires that much before the endpoint's Expiration
// (config/resolve_credentials.go, resolveHTTPCredProvider). The IMDS
// provider's cache has none.
const containerExpiryWindow = 5 * time.Minute

func TestSDKDefaultChainIMDSv2(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{warm: true})
	cleanAWSEnv(t)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.url)
	// The SDK must not fall back to IMDSv1 if the token request fails.
	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")

	got := sdkRetrieve(t)
	want := issued(t, f, callerAt("127.0.0.1"), "app")
	if got.AccessKeyID != want.AccessKeyID || got.SecretAccessKey != want.SecretAccessKey || got.SessionToken != want.SessionToken {
		t.Errorf("SDK got key %q, the agent issued %q (or secret/token differ)", got.AccessKeyID, want.AccessKeyID)
	}
	if !got.CanExpire || got.Expires.Unix() != want.Expiration.Unix() {
		t.Errorf("SDK Expires = %v (CanExpire %v), want %v", got.Expires, got.CanExpire, want.Expiration.UTC().Truncate(time.Second))
	}
	if n := f.metrics.count(epToken, http.StatusOK); n == 0 {
		t.Errorf("the SDK got no IMDSv2 token (imds_token 200 seen %d times)", n)
	}
}

func TestSDKIMDSRegion(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	cleanAWSEnv(t)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f.url)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	client := sdkimds.New(sdkimds.Options{Endpoint: f.url})
	out, err := client.GetRegion(ctx, nil)
	if err != nil {
		t.Fatalf("GetRegion: %v", err)
	}
	if out.Region != testRegion {
		t.Errorf("GetRegion = %q, want %q", out.Region, testRegion)
	}

	// An SDK with no region of its own resolves it from IMDS.
	t.Setenv("AWS_REGION", "")
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithEC2IMDSRegion())
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	if cfg.Region != testRegion {
		t.Errorf("region from IMDS = %q, want %q", cfg.Region, testRegion)
	}
}

// TestIMDSExtendedPath reads the extended path (the Java, Ruby and PHP SDKs
// try it first): the same credentials, plus AccountId.
func TestIMDSExtendedPath(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	tok := http.Header{tokenHeader: {f.token(t, c, "60")}}

	list := f.call(t, c, http.MethodGet, credsExtPath+"/", "", tok)
	if list.status != http.StatusOK || string(list.body) != "app" {
		t.Fatalf("extended role list = %d %q, want 200 \"app\"", list.status, list.body)
	}
	r := f.call(t, c, http.MethodGet, credsExtPath+"/app", "", tok)
	if r.status != http.StatusOK {
		t.Fatalf("extended credentials: %d %s", r.status, r.body)
	}
	var body struct {
		Code, Type, AccessKeyId, Expiration, AccountId string
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("extended body: %v", err)
	}
	want := issued(t, f, callerAt("127.0.0.1"), "app")
	if body.Code != "Success" || body.Type != "AWS-HMAC" || body.AccessKeyId != want.AccessKeyID ||
		body.AccountId != testAccount || body.Expiration != want.Expiration.UTC().Format(time.RFC3339) {
		t.Errorf("extended body = %+v; want key %s, account %s, expiration %s", body, want.AccessKeyID, testAccount, want.Expiration.UTC().Format(time.RFC3339))
	}
}

func TestSDKDefaultChainContainer(t *testing.T) {
	for _, tc := range []struct {
		name string
		// path is appended to the sidecar's URL in FULL_URI.
		path string
		role string
		// viaFile sends the token through AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
		viaFile bool
	}{
		{name: "token", path: "/role/app", role: "app"},
		{name: "token_file", path: "/role/app", role: "app", viaFile: true},
		{name: "token_file_default_role", path: "/creds", role: "reports", viaFile: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFixture(t, mainConfigYAML("required"), fixtureOpts{warm: true})
			cleanAWSEnv(t)
			t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f.url+tc.path)
			if tc.viaFile {
				file := filepath.Join(t.TempDir(), "token")
				// No trailing newline: the Go SDK sends the file verbatim.
				if err := os.WriteFile(file, []byte(billingToken), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file)
			} else {
				t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", billingToken)
			}

			got := sdkRetrieve(t)
			want := issued(t, f, &agent.Caller{Token: billingToken, HasToken: true, Addr: callerAt("127.0.0.1").Addr}, tc.role)
			if got.AccessKeyID != want.AccessKeyID || got.SecretAccessKey != want.SecretAccessKey || got.SessionToken != want.SessionToken {
				t.Errorf("SDK got key %q, the agent issued %q (or secret/token differ)", got.AccessKeyID, want.AccessKeyID)
			}
			if !got.CanExpire || got.Expires.Add(containerExpiryWindow).Unix() != want.Expiration.Unix() {
				t.Errorf("SDK Expires = %v (+%v window), want %v", got.Expires, containerExpiryWindow, want.Expiration.UTC().Truncate(time.Second))
			}
		})
	}
}

// TestSDKContainerWrongToken: the SDK reports the sidecar's refusal.
func TestSDKContainerWrongToken(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	cleanAWSEnv(t)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f.url+"/role/app")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "not-the-token")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	if creds, err := cfg.Credentials.Retrieve(ctx); err == nil {
		t.Fatalf("Retrieve with a wrong token succeeded: key %s", creds.AccessKeyID)
	}
	if n := f.metrics.count(epECS, http.StatusUnauthorized); n == 0 {
		t.Errorf("no 401 answered on the ECS endpoint")
	}
}
