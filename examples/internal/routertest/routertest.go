// Package routertest is the one test every router example passes: a signed
// payment through the real router runs its callback once, a duplicate gets
// 204 without running it, and a forged notification gets 401.
package routertest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// NewRouter builds an example's router, serving /wechat/bizcircle.
type NewRouter func(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (http.Handler, error)

// Run checks the router that newRouter builds.
func Run(t *testing.T, newRouter NewRouter) {
	t.Helper()
	wechat := bizcircletest.NewPlatform()
	var runs atomic.Int32
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		runs.Add(1)
		return nil
	}}
	r, err := newRouter(wechat.APIv3Key, wechat.Verifier(), cb, bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	post := func(m *bizcircletest.Message) (int, string) {
		t.Helper()
		req, err := m.NewRequest(t.Context(), srv.URL+"/wechat/bizcircle")
		if err != nil {
			t.Fatal(err)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	m := wechat.Payment(bizcircletest.SamplePayment())
	if status, body := post(m); status != http.StatusNoContent {
		t.Fatalf("payment: %d %s, want 204", status, body)
	}
	if status, _ := post(wechat.Resign(m)); status != http.StatusNoContent {
		t.Errorf("duplicate: %d, want 204", status)
	}
	forged := wechat.Payment(bizcircletest.SamplePayment())
	forged.Body[len(forged.Body)-2] ^= 1
	if status, body := post(forged); status != http.StatusUnauthorized || body != `{"code":"FAIL","message":"signature verification failed"}` {
		t.Errorf("forged: %d %s, want 401", status, body)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("callback ran %d times, want once", n)
	}
}
