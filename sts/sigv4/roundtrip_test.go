package sigv4

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// verifyingServer is an STS stand-in on 127.0.0.1 that verifies every
// request with Parse and Verify against the real clock and records what it
// saw. It answers a minimal valid response for the action, or the STS error
// XML when verification fails.
type verifyingServer struct {
	*httptest.Server
	secret string

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, action string
	req            *Request
	err            error
}

func newVerifyingServer(t *testing.T, secret string) *verifyingServer {
	s := &verifyingServer{secret: secret}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *verifyingServer) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := Parse(r, body)
	if err == nil {
		err = req.Verify(s.secret, time.Now())
	}
	// The action may be in the query (presigned GET) or the form body.
	action := r.URL.Query().Get("Action")
	if action == "" {
		action = formValue(string(body), "Action")
	}
	s.mu.Lock()
	s.seen = append(s.seen, seenRequest{r.Method, action, req, err})
	s.mu.Unlock()

	w.Header().Set("X-Amzn-Requestid", "00000000-0000-0000-0000-000000000000")
	w.Header().Set("Content-Type", "text/xml")
	if err != nil {
		e, ok := err.(*Error)
		if !ok {
			e = &Error{Code: "InternalFailure", Status: 500, Msg: "internal"}
		}
		w.WriteHeader(e.Status)
		var msg strings.Builder
		xml.EscapeText(&msg, []byte(e.Msg))
		io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>`+e.Code+`</Code><Message>`+msg.String()+`</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>`)
		return
	}
	switch action {
	case "AssumeRole":
		io.WriteString(w, `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::000000000000:assumed-role/demo/s</Arn><AssumedRoleId>AROAX:s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>`)
	default:
		io.WriteString(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::000000000000:user/x</Arn><UserId>AIDAX</UserId><Account>000000000000</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
	}
}

func formValue(body, name string) string {
	for _, kv := range strings.Split(body, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func (s *verifyingServer) takeSeen() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.seen
	s.seen = nil
	return out
}

// TestSTSClientRoundTrip runs the unmodified aws-sdk-go-v2 STS client against
// a server that verifies with this package.
func TestSTSClientRoundTrip(t *testing.T) {
	srv := newVerifyingServer(t, testSecret)
	for _, tc := range []struct {
		name, endpoint, token string
	}{
		{"plain", srv.URL, ""},
		{"session token", srv.URL, testToken},
		{"endpoint with trailing slash", srv.URL + "/", testToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := sts.NewFromConfig(aws.Config{
				Region:           "us-east-1",
				Credentials:      credentials.NewStaticCredentialsProvider(testAKID, testSecret, tc.token),
				RetryMaxAttempts: 1,
			}, func(o *sts.Options) { o.BaseEndpoint = aws.String(tc.endpoint) })
			ctx := context.Background()

			out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatalf("GetCallerIdentity: %v", err)
			}
			if aws.ToString(out.Arn) != "arn:aws:iam::000000000000:user/x" {
				t.Errorf("Arn = %q", aws.ToString(out.Arn))
			}
			if _, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
				RoleArn:         aws.String("arn:aws:iam::123456789012:role/demo"),
				RoleSessionName: aws.String("round trip"),
				DurationSeconds: aws.Int32(900),
			}); err != nil {
				t.Fatalf("AssumeRole: %v", err)
			}
			presigned, err := sts.NewPresignClient(client).PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			preq, err := http.NewRequest(presigned.Method, presigned.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range presigned.SignedHeader {
				if k != "Host" {
					preq.Header[k] = v
				}
			}
			resp, err := http.DefaultClient.Do(preq)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("presigned GetCallerIdentity: status %d", resp.StatusCode)
			}

			seen := srv.takeSeen()
			if len(seen) != 3 {
				t.Fatalf("server saw %d requests, want 3", len(seen))
			}
			for i, want := range []string{"GetCallerIdentity", "AssumeRole", "GetCallerIdentity"} {
				s := seen[i]
				if s.err != nil {
					t.Errorf("request %d (%s): %v", i, s.action, s.err)
					continue
				}
				if s.action != want || s.req.AccessKeyID != testAKID || s.req.Service != "sts" || s.req.Region != "us-east-1" || s.req.SessionToken != tc.token {
					t.Errorf("request %d: action %q, parsed %+v", i, s.action, s.req)
				}
				if i == 2 && !s.req.Presigned {
					t.Errorf("request %d: want presigned", i)
				}
			}
		})
	}

	t.Run("wrong secret is refused end to end", func(t *testing.T) {
		client := sts.NewFromConfig(aws.Config{
			Region:           "us-east-1",
			Credentials:      credentials.NewStaticCredentialsProvider(testAKID, "not-the-secret", ""),
			RetryMaxAttempts: 1,
		}, func(o *sts.Options) { o.BaseEndpoint = aws.String(srv.URL) })
		_, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		if err == nil || !strings.Contains(err.Error(), CodeSignatureDoesNotMatch) {
			t.Fatalf("got %v, want SignatureDoesNotMatch from the SDK", err)
		}
		for _, s := range srv.takeSeen() {
			if !isCode(s.err, CodeSignatureDoesNotMatch) {
				t.Errorf("server verdict %v", s.err)
			}
		}
	})
}
