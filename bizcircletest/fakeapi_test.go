package bizcircletest_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

var (
	sharedPlatform = sync.OnceValue(bizcircletest.NewCertificatePlatform)
	sharedMerchant = sync.OnceValue(bizcircletest.NewMerchant)
)

func newServer(t *testing.T) *bizcircletest.APIServer {
	t.Helper()
	s := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	t.Cleanup(s.Close)
	return s
}

const authPath = bizcircletest.PathUserAuthorizations + "o1?appid=wx1"

// TestAPIHandler_servesAWechatPayClient serves the handler on a plain HTTP
// server, as 'bizcircle fakeapi' does, to a wechatpay-go client configured
// as an application is, for a merchant known only by its public key.
func TestAPIHandler_servesAWechatPayClient(t *testing.T) {
	p := bizcircletest.NewPlatform()
	m := sharedMerchant()
	h := bizcircletest.NewAPIHandler(p, &bizcircletest.Merchant{MchID: m.MchID, PublicKey: &m.Key.PublicKey, Serial: m.Serial})
	var (
		mu    sync.Mutex
		calls []bizcircletest.Call
	)
	h.OnCall(func(c bizcircletest.Call) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	newClient := func(m *bizcircletest.Merchant) *core.Client {
		c, err := core.NewClient(t.Context(), option.WithWechatPayPublicKeyAuthCipher(m.MchID, m.Serial, m.Key, p.Serial, &p.Key.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	api := newClient(m)
	points := map[string]any{
		"transaction_id": "1", "appid": "wx1", "openid": "o1", "earn_points": true, "increased_points": 2,
		"points_update_time": "2020-05-20T13:29:35.120+08:00",
	}

	res, err := api.Post(t.Context(), srv.URL+bizcircletest.PathPointsNotify, points)
	if err != nil || res.Response.StatusCode != http.StatusNoContent {
		t.Fatalf("points sync: %v", err)
	}
	h.FailNext(1, bizcircletest.FailSystemError)
	var apiErr *core.APIError
	if _, err := api.Post(t.Context(), srv.URL+bizcircletest.PathPointsNotify, points); !errors.As(err, &apiErr) || apiErr.Code != "SYSTEM_ERROR" {
		t.Errorf("failed call: err = %v, want 500 SYSTEM_ERROR", err)
	}
	if _, err := newClient(bizcircletest.NewMerchant()).Get(t.Context(), srv.URL+authPath); !errors.As(err, &apiErr) || apiErr.Code != "SIGN_ERROR" {
		t.Errorf("another merchant: err = %v, want 401 SIGN_ERROR", err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []struct {
		method, path string
		status       int
		answer       string
	}{
		{http.MethodPost, bizcircletest.PathPointsNotify, http.StatusNoContent, ""},
		{http.MethodPost, bizcircletest.PathPointsNotify, http.StatusInternalServerError, `"code":"SYSTEM_ERROR"`},
		{http.MethodGet, bizcircletest.PathUserAuthorizations + "o1", http.StatusUnauthorized, `"code":"SIGN_ERROR"`},
	}
	if len(calls) != len(want) {
		t.Fatalf("OnCall got %d calls, want %d", len(calls), len(want))
	}
	for i, w := range want {
		c := calls[i]
		if c.Method != w.method || c.Path != w.path || c.Status != w.status || !strings.Contains(string(c.Answer), w.answer) || (w.answer == "") != (c.Answer == nil) {
			t.Errorf("call %d: %s %s → %d %s; want %s %s → %d %s", i, c.Method, c.Path, c.Status, c.Answer, w.method, w.path, w.status, w.answer)
		}
	}
	if n := len(h.Calls()); n != 0 {
		t.Errorf("the handler kept %d calls while OnCall took them", n)
	}
	h.OnCall(nil)
	if _, err := api.Get(t.Context(), srv.URL+authPath); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Calls()); n != 1 {
		t.Errorf("the handler kept %d calls after OnCall(nil), want 1", n)
	}
}

func TestNewAPIHandlerPanics(t *testing.T) {
	m := sharedMerchant()
	tests := []struct {
		name     string
		platform *bizcircletest.Platform
		merchant *bizcircletest.Merchant
	}{
		{"without a platform", nil, m},
		{"without a merchant", sharedPlatform(), nil},
		{"with a merchant that has no key", sharedPlatform(), &bizcircletest.Merchant{MchID: m.MchID, Serial: m.Serial}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("NewAPIHandler did not panic")
				}
			}()
			bizcircletest.NewAPIHandler(tt.platform, tt.merchant)
		})
	}
}
