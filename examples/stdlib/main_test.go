package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

func TestRouter(t *testing.T) {
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

// TestRouterSurvivesRetries replays WeChat Pay's retry schedule through the
// router with a fake clock: a callback failing three times succeeds once.
func TestRouterSurvivesRetries(t *testing.T) {
	clock := bizcircletest.NewClock(time.Now())
	wechat := bizcircletest.NewPlatform()
	wechat.Now = clock.Now
	var tries, successes int
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		if tries++; tries <= 3 {
			return errors.New("points service down")
		}
		successes++
		return nil
	}}
	r, err := newRouter(wechat.APIv3Key, wechat.Verifier(), cb,
		bizcircle.WithClock(clock.Now), bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	d := &bizcircletest.Deliverer{Platform: wechat, Sleep: clock.Sleep, Target: "/wechat/bizcircle"}
	attempts, err := d.Deliver(t.Context(), r, wechat.Payment(bizcircletest.SamplePayment()))
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 4 || attempts[3].Offset != time.Minute || successes != 1 {
		t.Errorf("%d attempts, last at +%v, %d successes; want 4, +1m0s, 1", len(attempts), attempts[len(attempts)-1].Offset, successes)
	}
}
