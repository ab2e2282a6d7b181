package imds

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
)

// Paths of the EC2 and ECS contracts.
const (
	tokenPath     = "/latest/api/token"
	credsPath     = "/latest/meta-data/iam/security-credentials"
	credsExtPath  = "/latest/meta-data/iam/security-credentials-extended"
	iamInfoPath   = "/latest/meta-data/iam/info"
	regionPath    = "/latest/meta-data/placement/region"
	azPath        = "/latest/meta-data/placement/availability-zone"
	instanceIDPat = "/latest/meta-data/instance-id"
	identityPath  = "/latest/dynamic/instance-identity/document"
	ecsRolePath   = "/role/{role}"
	ecsCredsPath  = "/creds"

	tokenHeader    = "X-Aws-Ec2-Metadata-Token"
	tokenTTLHeader = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	maxTokenTTL    = 21600
)

// Render slots of agent.Credentials: one per response format.
const (
	slotIMDS = iota
	slotIMDSExtended
	slotECS
)

// Metric endpoint labels (bounded).
const (
	epToken     = "imds_token"
	epIMDSCreds = "imds_credentials"
	epRoleList  = "imds_role_list"
	epMetadata  = "imds_metadata"
	epECS       = "ecs"
	epOther     = "other"
)

// routes registers the hottest routes first: gorilla/mux tries them in order.
func (s *Server) routes() *mux.Router {
	// SkipClean: gorilla/mux would otherwise answer a path that is not
	// clean ("//", "/./", "/../") with a bare 301 redirect; such paths are
	// no path of the contract and get the JSON 404 like any other.
	r := mux.NewRouter().SkipClean(true)
	both := func(path string, methods string, h http.HandlerFunc) {
		r.HandleFunc(path, h).Methods(methods)
		r.HandleFunc(path+"/", h).Methods(methods)
	}
	both(credsPath+"/{role}", http.MethodGet, s.limited(epIMDSCreds, false, s.imdsCreds(slotIMDS)))
	both(ecsRolePath, http.MethodGet, s.limited(epECS, true, s.ecsCreds))
	both(tokenPath, http.MethodPut, s.limited(epToken, false, s.putToken))
	both(ecsCredsPath, http.MethodGet, s.limited(epECS, true, s.ecsCreds))
	both(credsPath, http.MethodGet, s.limited(epRoleList, false, s.roleList))
	both(credsExtPath+"/{role}", http.MethodGet, s.limited(epIMDSCreds, false, s.imdsCreds(slotIMDSExtended)))
	both(credsExtPath, http.MethodGet, s.limited(epRoleList, false, s.roleList))
	both(iamInfoPath, http.MethodGet, s.limited(epMetadata, false, s.iamInfo))
	both(regionPath, http.MethodGet, s.limited(epMetadata, false, s.metadata(func(c *config.Config) string { return c.Region })))
	both(azPath, http.MethodGet, s.limited(epMetadata, false, s.metadata(func(c *config.Config) string { return c.Region + "a" })))
	both(instanceIDPat, http.MethodGet, s.limited(epMetadata, false, s.metadata(instanceID)))
	both(identityPath, http.MethodGet, s.limited(epMetadata, false, s.identityDocument))
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fail(w, epOther, time.Time{}, http.StatusNotFound, "NotFound", "no such path")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fail(w, epOther, time.Time{}, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed on this path")
	})
	return r
}

// errorBody is the JSON error of PRODUCT.md.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) fail(w http.ResponseWriter, ep string, start time.Time, status int, code, msg string) {
	b, _ := json.Marshal(errorBody{Code: code, Message: msg})
	h := w.Header()
	h["Content-Type"] = jsonType
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	w.Write(b)
	if !start.IsZero() {
		s.metrics.Request(ep, status, time.Since(start))
	} else {
		s.metrics.Request(ep, status, 0)
	}
}

var (
	jsonType = []string{"application/json"}
	textType = []string{"text/plain"}
)

// agentError maps an agent error to a status and a message that is safe
// for that caller.
func (s *Server) agentError(w http.ResponseWriter, ep string, start time.Time, err error) (int, string) {
	status, code, msg := http.StatusServiceUnavailable, "Unavailable", "credentials are not available"
	var ae *agent.Error
	if errors.As(err, &ae) {
		switch ae.Kind {
		case agent.KindNoClient:
			status, code, msg = http.StatusForbidden, "AccessDenied", "this caller is not trusted by any client of the sidecar's config"
		case agent.KindBadToken:
			status, code, msg = http.StatusUnauthorized, "Unauthorized", "the authorization token is not valid"
		case agent.KindRoleNotAllowed:
			status, code, msg = http.StatusNotFound, "NotFound", "no such role for this caller"
		case agent.KindSourceRejected:
			status, code, msg = http.StatusBadGateway, "STSError", ae.Msg
		default:
			msg = ae.Msg
		}
	}
	s.fail(w, ep, start, status, code, msg)
	return status, code
}

func (s *Server) write(w http.ResponseWriter, ep string, start time.Time, ctype []string, body []byte) {
	// Content-Length is left to net/http: for a body written in one piece
	// before the handler returns it sets it without allocating.
	w.Header()["Content-Type"] = ctype
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	s.metrics.Request(ep, http.StatusOK, time.Since(start))
}

// putToken issues an IMDSv2 token bound to the caller.
func (s *Server) putToken(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.hostAllowed(r) {
		s.fail(w, epToken, start, http.StatusForbidden, "Forbidden", "the Host header is not an address of this sidecar")
		return
	}
	if _, proxied := r.Header["X-Forwarded-For"]; proxied {
		// As EC2 does: a token never goes through a proxy (SSRF defence).
		s.fail(w, epToken, start, http.StatusForbidden, "Forbidden", "token requests through a proxy (X-Forwarded-For) are refused")
		return
	}
	v := r.Header.Get(tokenTTLHeader)
	ttl, err := strconv.Atoi(v)
	if v == "" || err != nil || ttl < 1 || ttl > maxTokenTTL {
		s.fail(w, epToken, start, http.StatusBadRequest, "BadRequest", "X-aws-ec2-metadata-token-ttl-seconds must be an integer from 1 to 21600")
		return
	}
	c := s.caller(r, false)
	client, _ := s.agent.Identify(c) // an unknown caller gets a token that opens nothing
	tok := s.tokens.issue(s.clk.Now().Add(time.Duration(ttl)*time.Second), client, c.Addr)
	if hops := s.agent.Config().IMDS.HopLimit; hops > 0 {
		if ci, ok := r.Context().Value(connKey{}).(*connInfo); ok && ci.conn != nil {
			if err := setHopLimit(ci.conn, hops); err != nil {
				// Fail closed: a token must not travel further than allowed.
				s.log.Error("cannot apply imds.hop_limit; token refused", zap.Error(err))
				s.fail(w, epToken, start, http.StatusInternalServerError, "InternalError", "the token response hop limit could not be applied")
				return
			}
		}
	}
	h := w.Header()
	// Go and Rust SDKs fail without the TTL echoed.
	h.Set(tokenTTLHeader, strconv.Itoa(ttl))
	s.write(w, epToken, start, textType, []byte(tok))
}

// imdsGate runs the checks every IMDS metadata GET shares: Host, token
// policy and token binding. It returns the caller's identity (zero when it
// matches no client, with idErr saying so) and whether the request may go on.
func (s *Server) imdsGate(w http.ResponseWriter, r *http.Request, ep string, start time.Time, c *agent.Caller) (id agent.Identity, idErr error, ok bool) {
	if !s.hostAllowed(r) {
		s.fail(w, ep, start, http.StatusForbidden, "Forbidden", "the Host header is not an address of this sidecar")
		return id, nil, false
	}
	tok, hasTok := r.Header[tokenHeader]
	if !hasTok && s.agent.Config().IMDS.Tokens == config.TokensRequired {
		s.fail(w, ep, start, http.StatusUnauthorized, "Unauthorized", "IMDSv2 is required: PUT /latest/api/token first and send X-aws-ec2-metadata-token")
		return id, nil, false
	}
	id, idErr = s.agent.Resolve(c)
	client := ""
	if idErr == nil {
		client = id.Client()
	}
	if hasTok && (len(tok) != 1 || !s.tokenValid(r, tok[0], client, c)) {
		s.fail(w, ep, start, http.StatusUnauthorized, "Unauthorized", "the metadata token is invalid, expired, or was issued to another caller")
		return id, nil, false
	}
	return id, idErr, true
}

// tokenValid verifies an IMDSv2 token, remembering the last one verified
// on the connection (its address is fixed; the client is compared).
func (s *Server) tokenValid(r *http.Request, tok, client string, c *agent.Caller) bool {
	now := s.clk.Now()
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	if ci != nil {
		if m := ci.token.Load(); m != nil && m.token == tok && m.client == client && now.Unix() < m.exp {
			return true
		}
	}
	exp, ok := s.tokens.check(tok, now, client, c.Addr)
	if ok && ci != nil {
		ci.token.Store(&verifiedToken{token: tok, client: client, exp: exp})
	}
	return ok
}

func (s *Server) imdsCreds(slot int) http.HandlerFunc {
	render := renderIMDS
	if slot == slotIMDSExtended {
		render = renderIMDSExtended
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := s.caller(r, false)
		id, idErr, ok := s.imdsGate(w, r, epIMDSCreds, start, c)
		if !ok {
			return
		}
		role := mux.Vars(r)["role"]
		if idErr != nil {
			status, code := s.agentError(w, epIMDSCreds, start, idErr)
			s.audit(r, epIMDSCreds, c, "", role, nil, status, code)
			return
		}
		creds, err := s.agent.CredentialsFor(r.Context(), id, c, role)
		if err != nil {
			status, code := s.agentError(w, epIMDSCreds, start, err)
			s.audit(r, epIMDSCreds, c, id.Client(), role, nil, status, code)
			return
		}
		s.write(w, epIMDSCreds, start, textType, creds.Rendered(slot, render))
		s.audit(r, epIMDSCreds, c, id.Client(), role, creds, http.StatusOK, "success")
	}
}

// roleList answers the caller's default role name: one line, no trailing
// newline (botocore appends the body to its next URL).
func (s *Server) roleList(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := s.caller(r, false)
	_, idErr, ok := s.imdsGate(w, r, epRoleList, start, c)
	if !ok {
		return
	}
	if idErr != nil {
		s.agentError(w, epRoleList, start, idErr)
		return
	}
	role, err := s.agent.DefaultRole(c)
	if err != nil {
		s.agentError(w, epRoleList, start, err)
		return
	}
	s.write(w, epRoleList, start, textType, []byte(role))
}

func (s *Server) iamInfo(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := s.caller(r, false)
	_, idErr, ok := s.imdsGate(w, r, epMetadata, start, c)
	if !ok {
		return
	}
	if idErr != nil {
		s.agentError(w, epMetadata, start, idErr)
		return
	}
	role, err := s.agent.DefaultRole(c)
	if err != nil {
		s.agentError(w, epMetadata, start, err)
		return
	}
	// DefaultRole and Config read the agent's config separately: a reload
	// in between may have removed the role.
	rc, ok := s.agent.Config().RoleByName(role)
	if !ok {
		s.fail(w, epMetadata, start, http.StatusNotFound, "NotFound", "no such role for this caller")
		return
	}
	account := agent.AccountOf(rc.ARN)
	b, _ := json.Marshal(struct {
		Code               string
		LastUpdated        string
		InstanceProfileArn string
		InstanceProfileId  string
	}{"Success", s.clk.Now().UTC().Format(timeFormat), "arn:aws:iam::" + account + ":instance-profile/" + role, instanceProfileID(role)})
	s.write(w, epMetadata, start, textType, b)
}

func (s *Server) metadata(value func(*config.Config) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := s.caller(r, false)
		if _, _, ok := s.imdsGate(w, r, epMetadata, start, c); !ok {
			return
		}
		s.write(w, epMetadata, start, textType, []byte(value(s.agent.Config())))
	}
}

func (s *Server) identityDocument(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := s.caller(r, false)
	_, idErr, ok := s.imdsGate(w, r, epMetadata, start, c)
	if !ok {
		return
	}
	if idErr != nil {
		// It names the account: only for callers the config trusts.
		s.agentError(w, epMetadata, start, idErr)
		return
	}
	cfg := s.agent.Config()
	account := cfg.STS.Local.AccountID
	if len(cfg.Roles) > 0 {
		account = agent.AccountOf(cfg.Roles[0].ARN)
	}
	b, _ := json.MarshalIndent(map[string]any{
		"accountId":        account,
		"architecture":     "x86_64",
		"availabilityZone": cfg.Region + "a",
		"imageId":          "ami-00000000000000000",
		"instanceId":       instanceID(cfg),
		"instanceType":     "t3.micro",
		"pendingTime":      "2024-01-01T00:00:00Z",
		"privateIp":        "127.0.0.1",
		"region":           cfg.Region,
		"version":          "2017-09-30",
	}, "", "  ")
	s.write(w, epMetadata, start, textType, b)
}

// ecsCreds serves /creds and /role/NAME with the Authorization token.
func (s *Server) ecsCreds(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !s.hostAllowed(r) {
		s.fail(w, epECS, start, http.StatusForbidden, "Forbidden", "the Host header is not an address of this sidecar")
		return
	}
	c := s.caller(r, true)
	role := mux.Vars(r)["role"]
	id, err := s.agent.Resolve(c)
	if err != nil {
		status, code := s.agentError(w, epECS, start, err)
		s.audit(r, epECS, c, "", role, nil, status, code)
		return
	}
	creds, err := s.agent.CredentialsFor(r.Context(), id, c, role)
	if err != nil {
		status, code := s.agentError(w, epECS, start, err)
		s.audit(r, epECS, c, id.Client(), role, nil, status, code)
		return
	}
	s.write(w, epECS, start, jsonType, creds.Rendered(slotECS, renderECS))
	s.audit(r, epECS, c, id.Client(), role, creds, http.StatusOK, "success")
}
