package otelbizcircle_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestNothingRecordedCarriesThePlaintextOrKeys(t *testing.T) {
	tel := newTelemetry(t)
	fail := true
	h := tel.endpoint(t, bizcircle.CallbackFuncs{
		Payment: func(_ context.Context, e *bizcircle.PaymentEvent) error {
			if fail {
				fail = false
				// A careless error message: it must stay out of the span.
				return fmt.Errorf("no member %s for %d fen", e.OpenID, e.Amount)
			}
			return nil
		},
		Refund: func(_ context.Context, e *bizcircle.RefundEvent) error { panic(e.OpenID) },
	})
	p := payment()
	paid := platform.Payment(p)
	refund := platform.Refund(bizcircle.RefundEvent{OpenID: secretOpenID, RefundID: "50300" + p.TransactionID, TransactionID: p.TransactionID, RefundAmount: secretAmount})
	// A failing callback, a success, a panic and a forgery.
	for _, m := range []*bizcircletest.Message{paid, platform.Resign(paid), refund, forged(paid)} {
		serve(h, m.Request("/notify"))
	}

	var recorded []string
	for _, s := range tel.spans.Ended() {
		recorded = append(recorded, s.Name(), s.Status().Description)
		recorded = appendValues(recorded, s.Attributes())
		for _, e := range s.Events() {
			recorded = append(recorded, e.Name)
			recorded = appendValues(recorded, e.Attributes)
		}
	}
	for _, m := range tel.metrics(t) {
		switch data := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range data.DataPoints {
				recorded = appendValues(recorded, dp.Attributes.ToSlice())
			}
		case metricdata.Histogram[float64]:
			for _, dp := range data.DataPoints {
				recorded = appendValues(recorded, dp.Attributes.ToSlice())
			}
		default:
			t.Errorf("unexpected %s data %T", m.Name, data)
		}
	}
	if len(recorded) < 20 {
		t.Fatalf("only %d values recorded: %q", len(recorded), recorded)
	}
	secrets := map[string]string{
		"OpenID":         secretOpenID,
		"amount":         strconv.Itoa(secretAmount),
		"transaction ID": p.TransactionID,
		"APIv3 key":      platform.APIv3Key,
		"plaintext":      string(paid.Plaintext),
	}
	for _, v := range recorded {
		for what, secret := range secrets {
			if strings.Contains(v, secret) {
				t.Errorf("recorded value %q carries the %s", v, what)
			}
		}
	}
}

func appendValues(dst []string, kvs []attribute.KeyValue) []string {
	for _, kv := range kvs {
		dst = append(dst, string(kv.Key), kv.Value.Emit())
	}
	return dst
}
