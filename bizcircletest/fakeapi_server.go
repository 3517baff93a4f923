package bizcircletest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

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
