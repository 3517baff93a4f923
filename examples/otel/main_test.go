package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
)

func TestServesANotificationWithItsSpanAndMetrics(t *testing.T) {
	wechat := bizcircletest.NewPlatform()
	var stdout bytes.Buffer
	reg := prometheus.NewRegistry()
	shutdown, err := setupOTel(&stdout, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		_, span := otel.Tracer("test/points").Start(ctx, "award points")
		span.End()
		return nil
	}}
	r, err := newRouter(wechat.APIv3Key, wechat.Verifier(), cb, reg, bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()

	pay := bizcircletest.SamplePayment()
	pay.Amount = 987654
	m := wechat.Payment(pay)
	req, err := m.NewRequest(t.Context(), srv.URL+"/wechat/bizcircle")
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req.Header.Set("Traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("status %d, want 204", res.StatusCode)
	}

	spans := decodeSpans(t, stdout.Bytes())
	if len(spans) != 2 {
		t.Fatalf("%d spans on stdout, want the callback's and the notification's:\n%s", len(spans), stdout.String())
	}
	child, delivery := spans[0], spans[1]
	if delivery.Name != "WeChatPay MALL_TRANSACTION.SUCCESS" || delivery.SpanContext.TraceID != traceID {
		t.Errorf("notification span %q in trace %s, want WeChatPay MALL_TRANSACTION.SUCCESS in the traceparent's %s", delivery.Name, delivery.SpanContext.TraceID, traceID)
	}
	if child.Name != "award points" || child.Parent.SpanID != delivery.SpanContext.SpanID {
		t.Errorf("span %q has parent %s, want award points under the notification span %s", child.Name, child.Parent.SpanID, delivery.SpanContext.SpanID)
	}
	for _, secret := range []string{pay.OpenID, strconv.Itoa(int(pay.Amount)), pay.TransactionID, wechat.APIv3Key} {
		if strings.Contains(stdout.String(), secret) {
			t.Errorf("stdout carries %q", secret)
		}
	}

	res, err = srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`bizcircle_notifications_total{bizcircle_event_type="MALL_TRANSACTION.SUCCESS",bizcircle_outcome="processed"`,
		`bizcircle_verify_duration_seconds_count{bizcircle_outcome="verified"`,
		`bizcircle_callback_duration_seconds_bucket{bizcircle_event_type="MALL_TRANSACTION.SUCCESS"`,
		`bizcircle_dedupe_duration_seconds_sum{bizcircle_dedupe="new"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepBizcircle(body))
		}
	}
}

// span is what the test reads of stdouttrace's JSON.
type span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
}

// decodeSpans reads the stream of JSON spans stdouttrace writes.
func decodeSpans(t *testing.T, out []byte) []span {
	t.Helper()
	var spans []span
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var s span
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("stdout: %v", err)
		}
		spans = append(spans, s)
	}
	return spans
}

func grepBizcircle(metrics []byte) string {
	var lines []string
	for line := range strings.Lines(string(metrics)) {
		if strings.HasPrefix(line, "bizcircle_") {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "")
}
