package bizcircletest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/downloader"
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

// TestAPIServer_answersAreSigned: wechatpay-go's response validation
// accepts the answers, for both kinds of platform.
func TestAPIServer_answersAreSigned(t *testing.T) {
	for name, p := range map[string]*bizcircletest.Platform{
		"certificate": sharedPlatform(),
		"public key":  bizcircletest.NewPlatform(),
	} {
		t.Run(name, func(t *testing.T) {
			s := bizcircletest.NewAPIServer(p, sharedMerchant())
			defer s.Close()
			c := s.NewClient()
			res, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com"+authPath)
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.StatusCode != http.StatusOK || res.Response.Header.Get("Wechatpay-Serial") != p.Serial {
				t.Errorf("answered %d signed by %s", res.Response.StatusCode, res.Response.Header.Get("Wechatpay-Serial"))
			}
			res, err = c.Post(context.Background(), "https://api.mch.weixin.qq.com"+bizcircletest.PathPointsNotify, map[string]any{
				"transaction_id": "1", "appid": "wx1", "openid": "o1", "earn_points": false, "increased_points": 0,
				"points_update_time": "2020-05-20T13:29:35.120+08:00",
			})
			if err != nil || res.Response.StatusCode != http.StatusNoContent {
				t.Fatalf("points: %v", err)
			}
		})
	}
}

// TestAPIServer_rejectsBadSignatures: requests not signed by the merchant's
// key are answered 401 SIGN_ERROR, as WeChat Pay does.
func TestAPIServer_rejectsBadSignatures(t *testing.T) {
	s := newServer(t)
	m := *sharedMerchant()
	otherKey := m
	otherKey.Key = bizcircletest.NewMerchant().Key
	otherMchID := m
	otherMchID.MchID = "1999999999"
	otherSerial := m
	otherSerial.Serial = "0123456789ABCDEF0123456789ABCDEF01234567"
	for name, signer := range map[string]bizcircletest.Merchant{
		"another key": otherKey, "another mchid": otherMchID, "another serial": otherSerial,
	} {
		t.Run(name, func(t *testing.T) {
			c := s.NewClient(signer.Credential())
			_, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com"+authPath)
			var apiErr *core.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "SIGN_ERROR" {
				t.Errorf("err = %v, want 401 SIGN_ERROR", err)
			}
		})
	}
	t.Run("no Authorization", func(t *testing.T) {
		res, err := s.HTTPClient().Get("https://api.mch.weixin.qq.com" + authPath)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Code string }
		_ = json.NewDecoder(res.Body).Decode(&body)
		if res.StatusCode != http.StatusUnauthorized || body.Code != "SIGN_ERROR" {
			t.Errorf("answered %d %s", res.StatusCode, body.Code)
		}
	})
	for _, c := range s.Calls() {
		if c.Status != http.StatusUnauthorized {
			t.Errorf("recorded %s %s → %d", c.Method, c.Path, c.Status)
		}
	}
}

// TestAPIServer_certificates: wechatpay-go's downloader reads the
// certificate list, before and after a rotation.
func TestAPIServer_certificates(t *testing.T) {
	p := bizcircletest.NewCertificatePlatform()
	s := bizcircletest.NewAPIServer(p, sharedMerchant())
	defer s.Close()
	ctx := context.Background()
	d, err := downloader.NewCertificateDownloaderWithClient(ctx, s.NewClient(option.WithoutValidator()), p.APIv3Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get(ctx, p.Serial); !ok || len(d.GetAll(ctx)) != 1 {
		t.Fatalf("downloaded %v", d.GetAll(ctx))
	}
	rotated := s.Rotate()
	if rotated.APIv3Key != p.APIv3Key || rotated.Serial == p.Serial || s.Platform() != rotated {
		t.Fatal("Rotate did not add a platform with the same APIv3 key")
	}
	// The downloader now verifies answers with the old certificate and asks
	// for it in Wechatpay-Serial; the server honours that.
	if err := d.DownloadCertificates(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get(ctx, rotated.Serial); !ok || len(d.GetAll(ctx)) != 2 {
		t.Errorf("after rotation downloaded %v", d.GetAll(ctx))
	}
	if _, err := downloader.NewCertificateDownloaderWithClient(ctx, s.NewClient(option.WithoutValidator()), bizcircletest.RandomAPIv3Key()); err == nil {
		t.Error("the certificates decrypted with another APIv3 key")
	}
}

func TestAPIServer_certificatesInPublicKeyMode(t *testing.T) {
	p := bizcircletest.NewPlatform()
	s := bizcircletest.NewAPIServer(p, sharedMerchant())
	defer s.Close()
	_, err := downloader.NewCertificateDownloaderWithClient(context.Background(), s.NewClient(option.WithoutValidator()), p.APIv3Key)
	if err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("err = %v, want no certificate downloaded", err)
	}
}

func TestAPIServer_failures(t *testing.T) {
	s := newServer(t)
	c := s.NewClient()
	get := func() error {
		_, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com"+authPath)
		return err
	}
	s.FailNext(1, bizcircletest.FailParamError)
	s.FailNext(1, bizcircletest.FailFrequencyLimited)
	s.FailNext(1, bizcircletest.FailSystemError)
	s.DisconnectNext(1)
	for _, want := range []bizcircletest.Failure{bizcircletest.FailParamError, bizcircletest.FailFrequencyLimited, bizcircletest.FailSystemError} {
		var apiErr *core.APIError
		if err := get(); !errors.As(err, &apiErr) || apiErr.StatusCode != want.Status || apiErr.Code != want.Code || apiErr.Message != want.Message {
			t.Errorf("err = %v, want %v", err, want)
		}
	}
	var apiErr *core.APIError
	if err := get(); err == nil || errors.As(err, &apiErr) {
		t.Errorf("disconnect: err = %v, want a network error", err)
	}
	if err := get(); err != nil {
		t.Errorf("after the failures: %v", err)
	}
	var statuses []int
	for _, c := range s.Calls() {
		statuses = append(statuses, c.Status)
	}
	if want := []int{400, 429, 500, 0, 200}; !slices.Equal(statuses, want) {
		t.Errorf("recorded statuses %v, want %v", statuses, want)
	}
	s.Reset()
	if n := len(s.Calls()); n != 0 {
		t.Errorf("%d calls after Reset", n)
	}
}

func TestAPIServer_records(t *testing.T) {
	s := newServer(t)
	c := s.NewClient()
	_, err := c.Post(context.Background(), "https://api.mch.weixin.qq.com"+bizcircletest.PathParkings, map[string]any{
		"brandid": 1000, "appid": "wx1", "openid": "o1", "plate_number": "粤B888888", "state": "IN",
		"time": "2020-05-20T13:29:35.120+08:00",
	})
	if err != nil {
		t.Fatal(err)
	}
	call, ok := s.LastCall()
	if !ok || call.Method != http.MethodPost || call.Path != bizcircletest.PathParkings || call.Host != "api.mch.weixin.qq.com" ||
		call.Status != http.StatusNoContent || call.JSON["brandid"] != json.Number("1000") || call.JSON["plate_number"] != "粤B888888" {
		t.Errorf("recorded %+v", call)
	}
}

// TestAPIServer_checksRequiredFields: like WeChat Pay, the server refuses a
// body without a required field, or with a time that is not RFC 3339.
func TestAPIServer_checksRequiredFields(t *testing.T) {
	s := newServer(t)
	c := s.NewClient()
	full := func() map[string]any {
		return map[string]any{
			"transaction_id": "1", "appid": "wx1", "openid": "o1", "earn_points": false, "increased_points": 0,
			"points_update_time": "2020-05-20T13:29:35.120+08:00",
		}
	}
	tests := map[string]func(map[string]any){
		"no earn_points":       func(b map[string]any) { delete(b, "earn_points") },
		"no increased_points":  func(b map[string]any) { delete(b, "increased_points") },
		"time with a space":    func(b map[string]any) { b["points_update_time"] = "2020-09-16 16:04:02" },
		"empty transaction_id": func(b map[string]any) { b["transaction_id"] = "" },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			b := full()
			edit(b)
			_, err := c.Post(context.Background(), "https://api.mch.weixin.qq.com"+bizcircletest.PathPointsNotify, b)
			var apiErr *core.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "PARAM_ERROR" {
				t.Errorf("err = %v, want 400 PARAM_ERROR", err)
			}
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		_, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com/v3/nothing")
		var apiErr *core.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
			t.Errorf("err = %v, want 404", err)
		}
	})
}

func TestAPIServer_HTTPClientReachesServer(t *testing.T) {
	s := newServer(t)
	res, err := s.HTTPClient().Get("http://elsewhere.example/v3/certificates")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Wechatpay-Signature") == "" {
		t.Errorf("answered %d, signature %q", res.StatusCode, res.Header.Get("Wechatpay-Signature"))
	}
}

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
