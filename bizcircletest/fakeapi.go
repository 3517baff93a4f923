package bizcircletest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

// Paths the [APIHandler] serves.
const (
	PathCertificates       = "/v3/certificates"
	PathPointsNotify       = "/v3/businesscircle/points/notify"
	PathUserAuthorizations = "/v3/businesscircle/user-authorizations/" // + {openid}
	PathUsers              = "/v3/businesscircle/users/"               // + {openid}/points/commit_status
	PathParkings           = "/v3/businesscircle/parkings"
)

// A Failure is an error answer of WeChat Pay's APIv3: a status and the
// {"code","message"} body.
type Failure struct {
	Status  int
	Code    string
	Message string
}

// The failures [APIHandler.FailNext] is usually told to give.
var (
	FailParamError       = Failure{http.StatusBadRequest, "PARAM_ERROR", "参数错误"}
	FailFrequencyLimited = Failure{http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限"}
	FailSystemError      = Failure{http.StatusInternalServerError, "SYSTEM_ERROR", "系统错误"}
)

// failSignature answers requests whose Authorization does not verify.
var failSignature = Failure{http.StatusUnauthorized, "SIGN_ERROR", "签名错误"}

// A Call is one request the [APIHandler] received, as it received it, and
// its answer.
type Call struct {
	Method string
	// Host is the host the client called, such as api.mch.weixin.qq.com.
	Host string
	// Path is the path as sent, still escaped.
	Path  string
	Query url.Values
	// Body is the raw body, nil when empty; JSON is the body decoded
	// (numbers as json.Number), nil when the body is empty or not a JSON
	// object.
	Body []byte
	JSON map[string]any
	// Status is the status the server answered; 0 when it dropped the
	// connection instead.
	Status int
	// Answer is the body answered, nil when empty: the {"code","message"}
	// of a failure.
	Answer []byte
}

// UserAuthorization is what the [APIHandler] answers for a shopper's
// authorization query (授权查询). Zero times are left out of the answer.
type UserAuthorization struct {
	State           string // UNAUTHORIZED, AUTHORIZED or DEAUTHORIZED
	AuthorizeTime   time.Time
	DeauthorizeTime time.Time
}

// An APIHandler is a fake WeChat Pay API for one merchant, as an
// http.Handler: [APIServer] serves it on an httptest TLS server for tests,
// and 'bizcircle fakeapi' on a local port for an application under test.
// Like the real API it verifies each request's Authorization signature with
// the merchant's public key (answering 401 SIGN_ERROR when it does not
// verify), signs its answers with the platform key, serves the platform
// certificates encrypted with the APIv3 key, and checks the required fields
// of the smart business circle calls (400 PARAM_ERROR). It records every
// call for assertions and can be told to fail.
//
// Its answers are signed by the platform whose serial the request names in
// Wechatpay-Serial, as WeChat Pay does while certificates rotate, else by the
// newest one. Serve it with keep-alives disabled (as APIServer does), so no
// HTTP client silently resends a request whose connection
// [APIHandler.DisconnectNext] dropped.
//
// An APIHandler is safe for concurrent use; create one with
// [NewAPIHandler].
type APIHandler struct {
	merchant *Merchant

	mu             sync.Mutex
	platforms      []*Platform // the last is the newest
	calls          []Call
	onCall         func(Call)
	faults         []fault
	authorizations map[string]UserAuthorization
	commitStatus   map[string]string
}

// An APIServer is an [APIHandler] on an httptest TLS server: a fake WeChat
// Pay API server for tests, with the handler's methods. The connection is
// closed after each answer. An APIServer is safe for concurrent use. Close
// it when done.
type APIServer struct {
	*APIHandler

	// URL is the server's base URL, https://127.0.0.1:port. Clients made by
	// [APIServer.HTTPClient] reach the server whatever host they call.
	URL string

	srv *httptest.Server
}

// fault is one queued misbehaviour: a Failure, or a dropped connection when
// failure is nil.
type fault struct{ failure *Failure }

// NewAPIHandler returns an APIHandler that plays WeChat Pay with platform's
// keys for merchant m. It panics if either is nil, or if m has neither a Key
// nor a PublicKey.
func NewAPIHandler(platform *Platform, m *Merchant) *APIHandler {
	if platform == nil || m == nil {
		panic("bizcircletest: NewAPIHandler needs a Platform and a Merchant")
	}
	if m.publicKey() == nil {
		panic("bizcircletest: NewAPIHandler needs the Merchant's Key or PublicKey")
	}
	return &APIHandler{
		merchant:       m,
		platforms:      []*Platform{platform},
		authorizations: map[string]UserAuthorization{},
		commitStatus:   map[string]string{},
	}
}

// NewAPIServer starts an APIServer that plays WeChat Pay with platform's
// keys for merchant m. It panics if either is nil. Close it when done.
func NewAPIServer(platform *Platform, m *Merchant) *APIServer {
	if platform == nil || m == nil {
		panic("bizcircletest: NewAPIServer needs a Platform and a Merchant")
	}
	s := &APIServer{APIHandler: NewAPIHandler(platform, m)}
	s.srv = httptest.NewUnstartedServer(s.APIHandler)
	s.srv.Config.SetKeepAlivesEnabled(false)
	s.srv.StartTLS()
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, waiting for its requests to finish.
func (s *APIServer) Close() { s.srv.Close() }

// Merchant returns the merchant whose signatures the handler accepts.
func (s *APIHandler) Merchant() *Merchant { return s.merchant }

// Platform returns the newest platform: the one that signs answers to
// requests that name no known serial.
func (s *APIHandler) Platform() *Platform {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.platforms[len(s.platforms)-1]
}

// Rotate adds a new certificate-mode platform with the same APIv3 key and
// clock, and returns it: WeChat Pay rotating its platform certificate. From
// now on /v3/certificates lists it beside the older ones, and it signs the
// answers to requests that do not name an older serial. Sign notifications
// with the returned Platform to test a rotation.
func (s *APIHandler) Rotate() *Platform {
	p := NewCertificatePlatform()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.platforms[len(s.platforms)-1]
	p.APIv3Key, p.Now = cur.APIv3Key, cur.Now
	s.platforms = append(s.platforms, p)
	return p
}

// HTTPClient returns an http.Client that sends every request to the server,
// whatever its URL's scheme and host, so code that calls
// https://api.mch.weixin.qq.com (such as wechatpay-go's certificate
// downloader) reaches it.
func (s *APIServer) HTTPClient() *http.Client {
	target := must(url.Parse(s.URL))
	return &http.Client{
		Transport: rewriteHost{base: s.srv.Client().Transport, target: target},
		Timeout:   10 * time.Second,
	}
}

type rewriteHost struct {
	base   http.RoundTripper
	target *url.URL
}

func (t rewriteHost) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = t.target.Scheme, t.target.Host
	return t.base.RoundTrip(r)
}

// NewClient returns a wechatpay-go client that signs as the merchant, sends
// through [APIServer.HTTPClient], and validates answers with the newest
// platform's verifier; opts are applied after these and may replace them. It
// panics on error, for ease of use in tests, and when the merchant has no
// Key to sign with.
func (s *APIServer) NewClient(opts ...core.ClientOption) *core.Client {
	if s.merchant.Key == nil {
		panic("bizcircletest: NewClient needs the Merchant's Key")
	}
	all := append([]core.ClientOption{
		s.merchant.Credential(),
		option.WithVerifier(s.Platform().Verifier()),
		option.WithHTTPClient(s.HTTPClient()),
	}, opts...)
	return must(core.NewClient(context.Background(), all...))
}

// Calls returns a copy of the calls received so far, oldest first,
// certificate downloads and rejected calls included; none while an
// [APIHandler.OnCall] function takes them.
func (s *APIHandler) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls received so far whose path starts with prefix.
func (s *APIHandler) CallsTo(prefix string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// LastCall returns the latest call, and whether there was one.
func (s *APIHandler) LastCall() (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return Call{}, false
	}
	return s.calls[len(s.calls)-1], true
}

// Reset forgets the recorded calls and queued failures.
func (s *APIHandler) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.faults = nil, nil
}

// FailNext makes the next n correctly signed API calls answer f instead of
// being served. Certificate downloads are not affected. Failures queue up
// behind earlier ones.
func (s *APIHandler) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{failure: &f})
	}
}

// DisconnectNext makes the next n correctly signed API calls close the
// connection without an answer: a network error for the client. It queues
// up like [APIHandler.FailNext].
func (s *APIHandler) DisconnectNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{})
	}
}

// SetAuthorization sets what the authorization query answers for openid.
// Unset shoppers are UNAUTHORIZED.
func (s *APIHandler) SetAuthorization(openid string, a UserAuthorization) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorizations[openid] = a
}

// SetCommitStatus sets what the points commit status query answers for
// openid: PENDING or FINISHED. Unset shoppers are FINISHED.
func (s *APIHandler) SetCommitStatus(openid, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitStatus[openid] = status
}

// answer is the status and body the server sends; a nil body is empty.
type answer struct {
	status int
	body   []byte
}

func failureAnswer(f Failure) answer {
	return answer{f.Status, mustJSON(map[string]string{"code": f.Code, "message": f.Message})}
}

// ServeHTTP answers one API call as WeChat Pay would.
func (s *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if len(body) == 0 {
		body = nil
	}
	call := Call{Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Body: body}
	if len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		_ = dec.Decode(&call.JSON)
	}

	var a answer
	if err := s.authenticate(r, body); err != nil {
		a = failureAnswer(Failure{failSignature.Status, failSignature.Code, failSignature.Message + ": " + err.Error()})
	} else if f, ok := s.nextFault(call.Path); ok && f.failure == nil {
		s.record(call)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
			}
		}
		return
	} else if ok {
		a = failureAnswer(*f.failure)
	} else {
		a = s.route(&call)
	}
	call.Status, call.Answer = a.status, a.body
	s.record(call) // before answering: a client that has its answer finds its call
	s.write(w, r, a)
}

// record keeps c, or hands it to the OnCall function.
func (s *APIHandler) record(c Call) {
	s.mu.Lock()
	onCall := s.onCall
	if onCall == nil {
		s.calls = append(s.calls, c)
	}
	s.mu.Unlock()
	if onCall != nil {
		onCall(c)
	}
}

// OnCall makes the handler hand each call to f once answered, instead of
// keeping it for [APIHandler.Calls]: a long-running server, such as
// 'bizcircle fakeapi', prints its calls without keeping them all. f may be
// called concurrently, from the goroutines serving the calls. A nil f keeps
// the calls again.
func (s *APIHandler) OnCall(f func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = f
}

func (s *APIHandler) nextFault(path string) (fault, bool) {
	if path == PathCertificates {
		return fault{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

// authenticate verifies the Authorization header as WeChat Pay does:
// WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,timestamp=…,
// serial_no=… over "METHOD\nURI\ntimestamp\nnonce\nbody\n".
func (s *APIHandler) authenticate(r *http.Request, body []byte) error {
	scheme, params, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || scheme != "WECHATPAY2-SHA256-RSA2048" {
		return fmt.Errorf("Authorization is not WECHATPAY2-SHA256-RSA2048")
	}
	p := map[string]string{}
	for _, kv := range strings.Split(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		p[k] = strings.Trim(v, `"`)
	}
	for _, k := range []string{"mchid", "nonce_str", "signature", "timestamp", "serial_no"} {
		if p[k] == "" {
			return fmt.Errorf("Authorization has no %s", k)
		}
	}
	if p["mchid"] != s.merchant.MchID {
		return fmt.Errorf("unknown mchid")
	}
	ts, err := strconv.ParseInt(p["timestamp"], 10, 64)
	if err != nil {
		return fmt.Errorf("malformed timestamp")
	}
	if skew := time.Now().Unix() - ts; skew > 300 || skew < -300 {
		return fmt.Errorf("timestamp %ds off", skew)
	}
	msg := r.Method + "\n" + r.RequestURI + "\n" + p["timestamp"] + "\n" + p["nonce_str"] + "\n" + string(body) + "\n"
	v := verifiers.NewSHA256WithRSAPubkeyVerifier(s.merchant.Serial, *s.merchant.publicKey())
	if err := v.Verify(r.Context(), p["serial_no"], msg, p["signature"]); err != nil {
		return fmt.Errorf("signature does not verify with the merchant certificate")
	}
	return nil
}

// write signs the answer with the platform the request names in
// Wechatpay-Serial, else the newest, and sends it.
func (s *APIHandler) write(w http.ResponseWriter, r *http.Request, a answer) {
	p := s.signer(r.Header.Get("Wechatpay-Serial"))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := randomString(32)
	h := w.Header()
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Signature", p.Sign(ts, nonce, a.body))
	h.Set("Wechatpay-Serial", p.Serial)
	h.Set("Request-ID", newID())
	if a.body != nil {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func (s *APIHandler) signer(serial string) *Platform {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.platforms {
		if serial != "" && p.Serial == serial {
			return p
		}
	}
	return s.platforms[len(s.platforms)-1]
}

func (s *APIHandler) route(c *Call) answer {
	path := c.Path
	switch {
	case c.Method == http.MethodGet && path == PathCertificates:
		return s.certificates()
	case c.Method == http.MethodPost && path == PathPointsNotify:
		return checkFields(c, "transaction_id", "appid", "openid", "earn_points", "increased_points", "points_update_time")
	case c.Method == http.MethodPost && path == PathParkings:
		return checkFields(c, "brandid", "appid", "openid", "plate_number", "state", "time")
	case c.Method == http.MethodGet && strings.HasPrefix(path, PathUserAuthorizations):
		openid, ok := pathParam(strings.TrimPrefix(path, PathUserAuthorizations))
		if !ok {
			break
		}
		return s.authorization(c, openid)
	case c.Method == http.MethodGet && strings.HasPrefix(path, PathUsers) && strings.HasSuffix(path, "/points/commit_status"):
		openid, ok := pathParam(strings.TrimSuffix(strings.TrimPrefix(path, PathUsers), "/points/commit_status"))
		if !ok {
			break
		}
		return s.commit(c, openid)
	}
	return failureAnswer(Failure{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "no such API in bizcircletest"})
}

// pathParam unescapes one escaped path segment.
func pathParam(escaped string) (string, bool) {
	if escaped == "" || strings.Contains(escaped, "/") {
		return "", false
	}
	v, err := url.PathUnescape(escaped)
	return v, err == nil && v != ""
}

// checkFields answers 204 when the body has every field and its times are
// RFC 3339, else 400 PARAM_ERROR naming the field.
func checkFields(c *Call, fields ...string) answer {
	if c.JSON == nil {
		return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "body is not a JSON object"})
	}
	for _, f := range fields {
		v, ok := c.JSON[f]
		if !ok || v == nil || v == "" {
			return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "missing " + f})
		}
		if f == "points_update_time" || f == "time" {
			if s, _ := v.(string); !isRFC3339(s) {
				return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", f + " is not RFC 3339"})
			}
		}
	}
	return answer{status: http.StatusNoContent}
}

func isRFC3339(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func (s *APIHandler) authorization(c *Call, openid string) answer {
	if c.Query.Get("appid") == "" {
		return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "missing appid"})
	}
	s.mu.Lock()
	a, ok := s.authorizations[openid]
	s.mu.Unlock()
	if !ok {
		a.State = "UNAUTHORIZED"
	}
	out := map[string]string{"openid": openid, "authorize_state": a.State}
	if !a.AuthorizeTime.IsZero() {
		out["authorize_time"] = a.AuthorizeTime.In(shanghai).Format(time.RFC3339)
	}
	if !a.DeauthorizeTime.IsZero() {
		out["deauthorize_time"] = a.DeauthorizeTime.In(shanghai).Format(time.RFC3339)
	}
	return answer{http.StatusOK, mustJSON(out)}
}

func (s *APIHandler) commit(c *Call, openid string) answer {
	for _, f := range []string{"brandid", "appid"} {
		if c.Query.Get(f) == "" {
			return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "missing " + f})
		}
	}
	s.mu.Lock()
	status, ok := s.commitStatus[openid]
	s.mu.Unlock()
	if !ok {
		status = "FINISHED"
	}
	return answer{http.StatusOK, mustJSON(map[string]string{"points_commit_status": status})}
}

// certificates answers GET /v3/certificates as WeChat Pay does: each
// certificate-mode platform's certificate as PEM, encrypted with
// AEAD_AES_256_GCM under the APIv3 key with associated data "certificate".
func (s *APIHandler) certificates() answer {
	s.mu.Lock()
	platforms := slices.Clone(s.platforms)
	s.mu.Unlock()
	type encrypted struct {
		Algorithm      string `json:"algorithm"`
		Nonce          string `json:"nonce"`
		AssociatedData string `json:"associated_data"`
		Ciphertext     string `json:"ciphertext"`
	}
	type certificate struct {
		SerialNo           string    `json:"serial_no"`
		EffectiveTime      string    `json:"effective_time"`
		ExpireTime         string    `json:"expire_time"`
		EncryptCertificate encrypted `json:"encrypt_certificate"`
	}
	data := []certificate{}
	for _, p := range platforms {
		if p.Certificate == nil {
			continue
		}
		ciphertext, nonce := p.Encrypt([]byte(p.CertificatePEM()), "certificate")
		data = append(data, certificate{
			SerialNo:      p.Serial,
			EffectiveTime: p.Certificate.NotBefore.In(shanghai).Format(time.RFC3339),
			ExpireTime:    p.Certificate.NotAfter.In(shanghai).Format(time.RFC3339),
			EncryptCertificate: encrypted{
				Algorithm:      "AEAD_AES_256_GCM",
				Nonce:          nonce,
				AssociatedData: "certificate",
				Ciphertext:     ciphertext,
			},
		})
	}
	return answer{http.StatusOK, mustJSON(map[string]any{"data": data})}
}
