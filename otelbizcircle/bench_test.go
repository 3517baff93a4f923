package otelbizcircle_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// alwaysRun is a Deduper that runs every time, so each iteration
// dispatches a fresh event.
type alwaysRun struct{}

func (alwaysRun) Do(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkInstrument compares, in one run, a payment through the whole
// endpoint without instrumentation, with Instrument on the no-op providers
// (what an application that has not set up OpenTelemetry pays), and with
// the SDK recording every span and metric.
func BenchmarkInstrument(b *testing.B) {
	m := platform.Payment(payment())
	for _, bc := range []struct {
		name string
		opts func(b *testing.B) []bizcircle.Option
	}{
		{"none", func(*testing.B) []bizcircle.Option { return nil }},
		{"noop", func(*testing.B) []bizcircle.Option {
			return []bizcircle.Option{otelbizcircle.Instrument(
				otelbizcircle.WithTracerProvider(tracenoop.NewTracerProvider()),
				otelbizcircle.WithMeterProvider(metricnoop.NewMeterProvider()))}
		}},
		{"sdk", func(b *testing.B) []bizcircle.Option {
			return []bizcircle.Option{newTelemetry(b).instrument()}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchmarkPayment(b, m, bc.opts(b)...)
		})
	}
}

// BenchmarkInstrumentDispatch is BenchmarkInstrument without the
// verification's RSA and AES: a verified payment through Dispatch alone,
// which shows the instrumentation's own cost in nanoseconds.
func BenchmarkInstrumentDispatch(b *testing.B) {
	m := platform.Payment(payment())
	dec, err := bizcircle.NewDecoder(platform.APIv3Key, platform.Verifier())
	if err != nil {
		b.Fatal(err)
	}
	n, err := dec.Decode(context.Background(), m.Header, m.Body)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts []bizcircle.Option
	}{
		{"none", nil},
		{"noop", []bizcircle.Option{otelbizcircle.Instrument(
			otelbizcircle.WithTracerProvider(tracenoop.NewTracerProvider()),
			otelbizcircle.WithMeterProvider(metricnoop.NewMeterProvider()))}},
		{"sdk", []bizcircle.Option{newTelemetry(b).instrument()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := bizcircle.NewDispatcher(bizcircle.CallbackFuncs{
				Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
			}, append(bc.opts, bizcircle.WithDeduper(alwaysRun{}), bizcircle.WithLogger(discardLogger))...)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Dispatch(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchmarkPayment(b *testing.B, m *bizcircletest.Message, opts ...bizcircle.Option) {
	opts = append(opts, bizcircle.WithDeduper(alwaysRun{}), bizcircle.WithLogger(discardLogger))
	h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	// One request is reused, as a server reuses its buffers.
	r := m.Request("/notify")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(m.Body))
		h.ServeHTTP(w, r)
	}
}
