package sigv4

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary Authorization headers, request targets, extra
// header values and bodies through Parse and, when that succeeds, through
// Verify and the canonical request builders: none may panic, and every
// failure must be ErrNotSigned or an *Error.
func FuzzParse(f *testing.F) {
	for _, v := range suiteVectors {
		r, body := rawRequest(f, v.raw)
		f.Add(r.Header.Get("Authorization"), r.RequestURI, r.Header.Get("X-Amz-Date"), r.Header.Get("My-Header1"), string(body))
	}
	f.Add("AWS4-HMAC-SHA256 Credential=a/20150830/r/s/aws4_request, SignedHeaders=host;x-amz-date;content-length;transfer-encoding;date, Signature=00", "/%zz/../?a=%", "20150830T123600Z", "x", "")
	f.Add("", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20150830%2Fr%2Fs%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Signature="+strings.Repeat("ab", 32)+"&X-Amz-Expires=1", "", "", "body")
	f.Add("AWS4-HMAC-SHA256 ,,,=,Credential=////", "//./..//", "Sun, 30 Aug 2015 12:36:00 GMT", "  a  b  ", "\x00\xff")

	f.Fuzz(func(t *testing.T, auth, target, amzDate, custom, body string) {
		r := &http.Request{
			Method:        http.MethodPost,
			RequestURI:    target,
			Host:          "sts.amazonaws.com",
			Header:        http.Header{},
			ContentLength: int64(len(body)),
		}
		if u, err := url.ParseRequestURI(target); err == nil {
			r.URL = u
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if amzDate != "" {
			r.Header.Set("X-Amz-Date", amzDate)
			r.Header.Set("Date", amzDate)
		}
		if custom != "" {
			r.Header.Set("My-Header1", custom)
			r.Header.Set("X-Amz-Content-Sha256", custom)
			r.Header.Set("X-Amz-Security-Token", custom)
		}
		req, err := Parse(r, []byte(body))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse returned %T %v, want *Error", err, err)
			}
			if req != nil {
				t.Fatal("Parse returned a request with an error")
			}
			return
		}
		_ = req.CanonicalRequest()
		_ = req.StringToSign()
		if err := req.Verify("secret", time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Verify returned %T %v, want *Error", err, err)
			}
		}
	})
}
