package bizcircletest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

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

// Merchant returns the merchant whose signatures the handler accepts.
func (s *APIHandler) Merchant() *Merchant { return s.merchant }

// Platform returns the newest platform: the one that signs answers to
// requests that name no known serial.
func (s *APIHandler) Platform() *Platform {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.platforms[len(s.platforms)-1]
}

// answer is the status and body the server sends; a nil body is empty.
type answer struct {
	status int
	body   []byte
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
