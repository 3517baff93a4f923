package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsCountOutcomes(t *testing.T) {
	wechat := bizcircletest.NewPlatform()
	reg := prometheus.NewRegistry()
	failures := 1
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		if failures > 0 {
			failures--
			return errors.New("points service down")
		}
		return nil
	}}
	m := newMetrics(reg)
	r, err := newRouter(wechat.APIv3Key, wechat.Verifier(), cb, m, reg, bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	post := func(m *bizcircletest.Message) int {
		t.Helper()
		req, _ := m.NewRequest(t.Context(), srv.URL+"/wechat/bizcircle")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	paid := wechat.Payment(bizcircletest.SamplePayment())
	forged := wechat.Payment(bizcircletest.SamplePayment())
	forged.Header.Set(bizcircle.HeaderSignature, bizcircle.SignTestPrefix+"probe")
	for _, step := range []struct {
		m    *bizcircletest.Message
		want int
	}{{paid, 500}, {wechat.Resign(paid), 204}, {wechat.Resign(paid), 204}, {forged, 401}} {
		if got := post(step.m); got != step.want {
			t.Fatalf("status %d, want %d", got, step.want)
		}
	}

	for _, c := range []struct {
		outcome, event, reason string
		want                   float64
	}{
		{"verified", bizcircle.EventPayment, "", 3},
		{"failed", bizcircle.EventPayment, "callback", 1},
		{"processed", bizcircle.EventPayment, "", 1},
		{"duplicate", bizcircle.EventPayment, "", 1},
		{"rejected", "", "signature", 1},
	} {
		got := testutil.ToFloat64(m.outcomes.WithLabelValues(c.outcome, c.event, c.reason))
		if got != c.want {
			t.Errorf("bizcircle_notifications_total{outcome=%q,event_type=%q,reason=%q} = %v, want %v", c.outcome, c.event, c.reason, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "bizcircle_notifications_total"); n != 5 {
		t.Errorf("%d series, want 5", n)
	}

	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	want := `bizcircle_notifications_total{event_type="MALL_TRANSACTION.SUCCESS",outcome="processed",reason=""} 1`
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, body)
	}
}
