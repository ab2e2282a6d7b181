package imds

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// TestPathMatchersMatchTemplates: the router's string matchers route every
// request exactly as gorilla/mux path templates (path and path+"/", {role}
// a [^/]+ segment) would: same route, same 404, same 405.
func TestPathMatchersMatchTemplates(t *testing.T) {
	f := newFixture(t, mainConfigYAML("optional"), fixtureOpts{})
	table := f.srv.routeTable()
	outcome := ""
	tag := func(s string) http.Handler {
		return http.HandlerFunc(func(http.ResponseWriter, *http.Request) { outcome = s })
	}
	ref := mux.NewRouter().SkipClean(true)
	ours := mux.NewRouter()
	for i, rt := range table {
		for _, p := range []string{rt.path, rt.path + "/"} {
			ref.Path(p).Methods(rt.method).Handler(tag("route " + strconv.Itoa(i)))
		}
		ours.NewRoute().MatcherFunc(pathMatcher(rt)).Methods(rt.method).Handler(tag("route " + strconv.Itoa(i)))
	}
	for _, r := range []*mux.Router{ref, ours} {
		r.NotFoundHandler, r.MethodNotAllowedHandler = tag("404"), tag("405")
	}

	var paths []string
	for _, rt := range table {
		p := strings.ReplaceAll(rt.path, "{role}", "app")
		paths = append(paths, p, p+"/", p+"//", p+"x", p[:len(p)-1], "/"+p, p+"/x", p+"/x/",
			strings.ReplaceAll(rt.path, "{role}", ""), strings.ReplaceAll(rt.path, "{role}", "a%2Fb"),
			strings.ReplaceAll(rt.path, "{role}", ".."), strings.ReplaceAll(rt.path, "{role}", "%20"),
			strings.ReplaceAll(rt.path, "{role}", "app/"), strings.ReplaceAll(rt.path, "{role}", "/app"),
			// Bytes a [^/]+ regexp takes as any other: a newline, a NUL,
			// invalid UTF-8, a multi-byte letter.
			strings.ReplaceAll(rt.path, "{role}", "a\nb"), strings.ReplaceAll(rt.path, "{role}", "a\x00"),
			strings.ReplaceAll(rt.path, "{role}", "\xff"), strings.ReplaceAll(rt.path, "{role}", "é"),
			p+"\n", p+"\xff")
	}
	paths = append(paths, "/", "", "/latest", "/latest/", "/role", "/role/", "/role//")
	routed := 0
	for _, p := range paths {
		for _, method := range []string{"GET", "PUT", "POST", "HEAD", "DELETE", "get"} {
			// The path is set decoded, as net/http hands it to the router
			// (both match on URL.Path): "%2F" in it is three characters.
			req := httptest.NewRequest(http.MethodGet, "http://169.254.169.254/", nil)
			req.Method, req.URL.Path = method, p
			outcome = ""
			ref.ServeHTTP(httptest.NewRecorder(), req)
			want := outcome
			outcome = ""
			m := mux.RouteMatch{Vars: noVars}
			if ours.Match(req, &m) {
				m.Handler.ServeHTTP(httptest.NewRecorder(), req)
			}
			if outcome != want {
				t.Errorf("%s %q: string matchers give %q, templates %q", method, p, outcome, want)
			}
			if strings.HasPrefix(want, "route") {
				routed++
			}
		}
	}
	if routed < 2*len(table) {
		t.Fatalf("only %d requests were routed: the corpus no longer reaches every route", routed)
	}
	if len(noVars) != 0 {
		t.Fatalf("a match wrote into the shared noVars: %v", noVars)
	}
}

// TestServeThroughMatch: requests reach their handlers through
// Server.ServeHTTP with the router's 404 and 405 answers intact.
func TestServeThroughMatch(t *testing.T) {
	f := newFixture(t, mainConfigYAML("optional"), fixtureOpts{})
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"PUT", tokenPath, http.StatusBadRequest}, // no TTL header
		{"DELETE", tokenPath, http.StatusMethodNotAllowed},
		{"GET", "/nothing/here", http.StatusNotFound},
		{"GET", regionPath + "/", http.StatusOK}, // imds.tokens: optional
	} {
		rec := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, "http://169.254.169.254"+tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d (%s)", tc.method, tc.path, rec.Code, tc.code, rec.Body)
		}
	}
}
