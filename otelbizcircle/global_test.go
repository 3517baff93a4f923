package otelbizcircle_test

import (
	"context"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// The only test that touches OpenTelemetry's globals; the others pass their
// providers.
func TestDefaultsAreTheGlobalsEvenWhenSetLater(t *testing.T) {
	opt := otelbizcircle.Instrument()
	tel := newTelemetry(t)
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	}, opt, bizcircle.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	r := platform.Payment(payment()).Request("/notify")
	r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if got := serve(h, r); got != 204 {
		t.Fatalf("status %d, want 204", got)
	}
	span := tel.lastSpan(t)
	if got := span.Parent().TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("parent trace %s, want the traceparent's: the global propagator", got)
	}
	if n := counts(t, tel.metrics(t)["bizcircle.notifications"]); len(n) != 2 {
		t.Errorf("bizcircle.notifications %v, want verified and processed on the global meter provider", n)
	}
}
