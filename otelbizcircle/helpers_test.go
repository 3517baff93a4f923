package otelbizcircle_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// platform's RSA key is made once: key generation is the slow part.
var platform = bizcircletest.NewPlatform()

var discardLogger = slog.New(slog.DiscardHandler)

// Plaintext values that must never reach a span or a metric.
const (
	secretOpenID = "oSecretOpenID4242xyz"
	secretAmount = 987654
)

func payment() bizcircle.PaymentEvent {
	p := bizcircletest.SamplePayment()
	p.OpenID, p.Amount = secretOpenID, secretAmount
	return p
}

// telemetry is an SDK that keeps what it records, for one test.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	// opts are given to every Instrument after the providers.
	opts []otelbizcircle.Option
}

func newTelemetry(t testing.TB) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	return tel
}

// instrument is otelbizcircle.Instrument reporting to tel.
func (tel *telemetry) instrument() bizcircle.Option {
	return otelbizcircle.Instrument(append([]otelbizcircle.Option{
		otelbizcircle.WithTracerProvider(tel.tp), otelbizcircle.WithMeterProvider(tel.mp),
	}, tel.opts...)...)
}

// endpoint is the whole bizcircle endpoint for platform, reporting to tel.
func (tel *telemetry) endpoint(t testing.TB, cb bizcircle.Callbacks, opts ...bizcircle.Option) http.Handler {
	t.Helper()
	opts = append([]bizcircle.Option{tel.instrument(), bizcircle.WithLogger(discardLogger)}, opts...)
	h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), cb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// lastSpan returns the span ended last, failing if none ended.
func (tel *telemetry) lastSpan(t testing.TB) sdktrace.ReadOnlySpan {
	t.Helper()
	ended := tel.spans.Ended()
	if len(ended) == 0 {
		t.Fatal("no span ended")
	}
	return ended[len(ended)-1]
}

// metrics collects every metric by name.
func (tel *telemetry) metrics(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	ms := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			ms[m.Name] = m
		}
	}
	return ms
}

// counts returns a counter's values by their attributes, written as
// "key=value,…" sorted by key.
func counts(t testing.TB, m metricdata.Metrics) map[string]int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, want an int64 sum", m.Name, m.Data)
	}
	got := map[string]int64{}
	for _, dp := range sum.DataPoints {
		got[attrString(dp.Attributes.ToSlice())] = dp.Value
	}
	return got
}

// histogram returns a histogram's data points by their attributes.
func histogram(t testing.TB, m metricdata.Metrics) map[string]metricdata.HistogramDataPoint[float64] {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T, want a float64 histogram", m.Name, m.Data)
	}
	got := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, dp := range h.DataPoints {
		got[attrString(dp.Attributes.ToSlice())] = dp
	}
	return got
}

func attrString(kvs []attribute.KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = string(kv.Key) + "=" + kv.Value.Emit()
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func serve(h http.Handler, r *http.Request) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// forged returns a copy of m whose signature does not verify.
func forged(m *bizcircletest.Message) *bizcircletest.Message {
	f := *m
	f.Header = m.Header.Clone()
	f.Header.Set(bizcircle.HeaderSignature, bizcircle.SignTestPrefix+"probe")
	return &f
}
