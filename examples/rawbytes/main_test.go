package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// lowerCased returns m's headers as a gateway might pass them: a flat map
// with lower-case names.
func lowerCased(m *bizcircletest.Message) map[string]string {
	h := map[string]string{}
	for name := range m.Header {
		h[strings.ToLower(name)] = m.Header.Get(name)
	}
	return h
}

func TestHandle(t *testing.T) {
	wechat := bizcircletest.NewPlatform()
	var runs atomic.Int32
	var sawNotification atomic.Bool
	r, err := newReceiver(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			runs.Add(1)
			_, ok := bizcircle.NotificationFromContext(ctx)
			sawNotification.Store(ok)
			return nil
		},
	}, bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}

	m := wechat.Payment(bizcircletest.SamplePayment())
	if status, body := r.handle(t.Context(), lowerCased(m), m.Body); status != http.StatusNoContent || body != nil {
		t.Fatalf("payment: %d %s, want 204 and no body", status, body)
	}
	dup := wechat.Resign(m)
	if status, _ := r.handle(t.Context(), lowerCased(dup), dup.Body); status != http.StatusNoContent {
		t.Errorf("duplicate: %d, want 204", status)
	}
	stale := wechat.Payment(bizcircletest.SamplePayment())
	headers := lowerCased(stale)
	headers["wechatpay-timestamp"] = "1600000000"
	status, body := r.handle(t.Context(), headers, stale.Body)
	if status != http.StatusUnauthorized || string(body) != `{"code":"FAIL","message":"timestamp outside the tolerance window"}` {
		t.Errorf("stale: %d %s, want 401", status, body)
	}
	if status, _ := r.handle(t.Context(), lowerCased(m), make([]byte, maxBody+1)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", status)
	}
	if n := runs.Load(); n != 1 || !sawNotification.Load() {
		t.Errorf("callback ran %d times (want once), saw the Notification: %v", n, sawNotification.Load())
	}
}
