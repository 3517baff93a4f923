package otelbizcircle

import (
	"context"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names, following OpenTelemetry's conventions: dot-separated,
// seconds for durations, a curly-braced annotation for counts.
const (
	metricNotifications    = "bizcircle.notifications"
	metricVerifyDuration   = "bizcircle.verify.duration"
	metricCallbackDuration = "bizcircle.callback.duration"
	metricDedupeDuration   = "bizcircle.dedupe.duration"
)

// durationBuckets suit every stage: verification takes about 100µs, a
// Deduper's round trip a millisecond, a callback up to WeChat Pay's 5s.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type metrics struct {
	notifications metric.Int64Counter
	verify        metric.Float64Histogram
	callback      metric.Float64Histogram
	dedupe        metric.Float64Histogram
}

// newMetrics creates the instruments. The API returns a working no-op
// instrument with an error, so an error is reported, not fatal.
func newMetrics(m metric.Meter) metrics {
	var ms metrics
	var err error
	if ms.notifications, err = m.Int64Counter(metricNotifications, metric.WithUnit("{notification}"),
		metric.WithDescription("Notifications by outcome at each stage: verified or rejected by the decoder, then processed, duplicate, ignored, failed, rejected or stored by the dispatcher.")); err != nil {
		otel.Handle(err)
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		if err != nil {
			otel.Handle(err)
		}
		return h
	}
	ms.verify = histogram(metricVerifyDuration, "Time to read, verify and decrypt a notification.")
	ms.callback = histogram(metricCallbackDuration, "Time a callback ran.")
	ms.dedupe = histogram(metricDedupeDuration, "The dispatcher's time outside the callback: the Deduper's round trips, waits for a delivery holding the event, and parsing the event.")
	return ms
}

// record counts o and records its stage's duration. Attribute values come
// from fixed sets, and the event type only from a verified notification, so
// forged requests cannot grow the number of series.
func (ms *metrics) record(ctx context.Context, o bizcircle.Observation, dedupe string, outsideCallback time.Duration) {
	verifying := o.Outcome == bizcircle.OutcomeVerified || (o.Outcome == bizcircle.OutcomeRejected && o.NotificationID == "")
	if ms.notifications.Enabled(ctx) {
		attrs := outcomeAttrs(o)
		if o.EventType != "" {
			attrs = append(attrs, keyEventType.String(o.EventType))
		}
		ms.notifications.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
	if verifying && ms.verify.Enabled(ctx) {
		ms.verify.Record(ctx, o.Duration.Seconds(), metric.WithAttributes(outcomeAttrs(o)...))
	}
	if dedupe != "" && ms.dedupe.Enabled(ctx) {
		ms.dedupe.Record(ctx, outsideCallback.Seconds(), metric.WithAttributes(keyDedupe.String(dedupe)))
	}
}

func outcomeAttrs(o bizcircle.Observation) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, keyOutcome.String(o.Outcome.String()))
	if o.Err != nil {
		attrs = append(attrs, keyErrorType.String(ErrorType(o.Err)))
	}
	return attrs
}

func (ms *metrics) recordCallback(ctx context.Context, eventType string, err error, took time.Duration) {
	if !ms.callback.Enabled(ctx) {
		return
	}
	attrs := []attribute.KeyValue{keyEventType.String(eventType)}
	if err != nil {
		attrs = append(attrs, keyErrorType.String(ErrorType(err)))
	}
	ms.callback.Record(ctx, took.Seconds(), metric.WithAttributes(attrs...))
}
