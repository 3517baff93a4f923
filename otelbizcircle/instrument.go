package otelbizcircle

import (
	"context"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/go-bizcircle/bizcircle/otelbizcircle"

// Span names: the event type is signed by WeChat Pay, so it is known, and
// bounded, only once the notification verified.
const (
	spanName       = "WeChatPay notification"
	spanNamePrefix = "WeChatPay "
)

// Attribute keys, on spans and metrics alike.
const (
	keyEventType      = attribute.Key("bizcircle.event_type")
	keyNotificationID = attribute.Key("bizcircle.notification_id")
	keyRequestID      = attribute.Key("bizcircle.request_id")
	keyOutcome        = attribute.Key("bizcircle.outcome")
	keyDedupe         = attribute.Key("bizcircle.dedupe")
	// keyErrorType is OpenTelemetry's error.type, set only on failures,
	// to [ErrorType]'s value.
	keyErrorType = semconv.ErrorTypeKey
)

// Instrument returns the bizcircle option that traces each delivery and
// records the package's metrics (see the package documentation). Pass it
// wherever the other bizcircle options go: [bizcircle.New],
// [bizcircle.VerifyAndDecrypt] and [bizcircle.NewHandler], or
// [bizcircle.NewDecoder] and [bizcircle.NewDispatcher], and queue mode.
//
// The providers and propagator are resolved when Instrument is called (see
// the options for the defaults). An instrument the meter refuses is reported
// to otel.Handle and records nothing; the rest work.
func Instrument(opts ...Option) bizcircle.Option {
	c := newConfig(opts)
	in := &instrumentation{
		tracer:     c.tracerProvider.Tracer(ScopeName),
		propagator: c.propagator,
		metrics:    newMetrics(c.meterProvider.Meter(ScopeName)),
	}
	return bizcircle.WithHook(bizcircle.Hook{
		Start:    in.start,
		Observe:  in.observe,
		Callback: in.callback,
		End:      in.end,
		Carry:    carry,
	})
}

type instrumentation struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	metrics
}

// delivery is what one delivery's hooks share, through its ctx. The hooks
// run in turn on the delivery's goroutine (the Deduper runs the callback
// before it returns), so it needs no lock.
type delivery struct {
	span        trace.Span
	kind        trace.SpanKind
	outcome     bizcircle.Outcome
	err         error
	dedupe      string
	callbackRan bool
	callback    time.Duration
}

type deliveryKey struct{}

func deliveryFrom(ctx context.Context) *delivery {
	d, _ := ctx.Value(deliveryKey{}).(*delivery)
	return d
}

// The options are made once, and passed as a slice: each call of
// trace.WithSpanKind, and each variadic call, would allocate.
var kindOptions = map[trace.SpanKind][]trace.SpanStartOption{
	trace.SpanKindServer:   {trace.WithSpanKind(trace.SpanKindServer)},
	trace.SpanKindInternal: {trace.WithSpanKind(trace.SpanKindInternal)},
	trace.SpanKindConsumer: {trace.WithSpanKind(trace.SpanKindConsumer)},
}

// start opens the delivery's span. A span already in ctx (an HTTP server
// middleware's, a queue worker's) is its parent and the span is Internal;
// otherwise the parent is the trace context in the request's headers, if
// any, and the span is a Server span. A stored notification's span is a
// Consumer span linked to the span that received it, with its job's
// messaging attributes.
func (in *instrumentation) start(ctx context.Context, d bizcircle.Delivery) context.Context {
	parent := trace.SpanContextFromContext(ctx)
	kind := trace.SpanKindInternal
	var link trace.Link
	switch {
	case d.Carried != nil || d.Job != nil:
		kind = trace.SpanKindConsumer
		if d.Carried != nil {
			link.SpanContext = trace.SpanContextFromContext(carrier.Extract(context.Background(), propagation.MapCarrier(d.Carried)))
		}
	case !parent.IsValid():
		ctx = in.propagator.Extract(ctx, propagation.HeaderCarrier(d.Header))
		kind = trace.SpanKindServer
	case parent.IsRemote():
		kind = trace.SpanKindServer
	}
	opts := kindOptions[kind]
	if link.SpanContext.IsValid() {
		opts = append(opts[:1:1], trace.WithLinks(link))
	}
	if d.Job != nil {
		opts = append(opts[:len(opts):len(opts)], trace.WithAttributes(jobAttributes(*d.Job)...))
	}
	ctx, span := in.tracer.Start(ctx, spanName, opts...)
	return context.WithValue(ctx, deliveryKey{}, &delivery{span: span, kind: kind})
}

// observe records o's metrics and keeps the outcome for the span, which
// gets the last one: the dispatcher's when the delivery got that far.
func (in *instrumentation) observe(ctx context.Context, o bizcircle.Observation) {
	d := deliveryFrom(ctx)
	var callback time.Duration
	ran := false
	if d != nil {
		callback, ran = d.callback, d.callbackRan
	}
	dedupe := dedupeResult(o, ran)
	in.record(ctx, o, dedupe, o.Duration-callback)
	if d == nil {
		return
	}
	d.outcome, d.err = o.Outcome, o.Err
	if dedupe != "" {
		d.dedupe = dedupe
	}
	if !d.span.IsRecording() {
		return
	}
	if o.RequestID != "" {
		d.span.SetAttributes(keyRequestID.String(o.RequestID))
	}
	// The decoder sets EventType and NotificationID only for a verified
	// notification: before that they are the sender's choice.
	if o.EventType != "" {
		d.span.SetName(spanNamePrefix + o.EventType)
		d.span.SetAttributes(keyEventType.String(o.EventType), keyNotificationID.String(o.NotificationID))
	}
}

// dedupeResult says what the Deduper answered: "new" (the callback ran),
// "duplicate", "in_flight" (another delivery held the event) or "error"; ""
// when the dispatcher did not reach it (verification, ignored events,
// queue mode's storing).
func dedupeResult(o bizcircle.Observation, callbackRan bool) string {
	switch kind := ErrorType(o.Err); {
	case o.Outcome == bizcircle.OutcomeDuplicate:
		return "duplicate"
	case kind == "ErrInFlight":
		return "in_flight"
	case kind == "ErrDeduper":
		return "error"
	case callbackRan:
		return "new"
	}
	return ""
}

// callback times the callback, for its histogram and to tell the Deduper's
// time from the callback's in the dispatcher's duration.
func (in *instrumentation) callback(ctx context.Context, n *bizcircle.Notification, run func(context.Context) error) error {
	start := time.Now()
	err := run(ctx)
	took := time.Since(start)
	if d := deliveryFrom(ctx); d != nil {
		d.callbackRan = true
		d.callback += took
	}
	in.recordCallback(ctx, n.EventType, err, took)
	return err
}

// end sets the span's outcome and status and ends it. A request's span
// follows OpenTelemetry's HTTP conventions: a rejection, answered 4xx, is
// the sender's error, so its status stays unset (error.type still names
// it); a failure, answered 5xx, is an error. A worker's span answers no one:
// any error is an error. The status says only which sentinel failed: the
// error's text may hold a callback's data.
func (in *instrumentation) end(ctx context.Context) {
	d := deliveryFrom(ctx)
	if d == nil {
		return
	}
	if d.span.IsRecording() {
		if d.outcome != 0 {
			d.span.SetAttributes(keyOutcome.String(d.outcome.String()))
		}
		if d.dedupe != "" {
			d.span.SetAttributes(keyDedupe.String(d.dedupe))
		}
		if d.err != nil {
			d.span.SetAttributes(keyErrorType.String(ErrorType(d.err)))
			if d.kind == trace.SpanKindConsumer || bizcircle.StatusCode(d.err) >= 500 {
				d.span.SetStatus(codes.Error, statusText(d.err, "bizcircle: notification failed"))
			}
		}
	}
	d.span.End()
}

// carrier writes and reads the receiving span's context stored with a
// queued notification. It is W3C Trace Context whatever propagator reads
// requests: the map is the package's own, not another service's.
var carrier = propagation.TraceContext{}

// carry returns the delivery span's context (traceparent, tracestate) for
// queue mode to store with the notification.
func carry(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	m := make(map[string]string, 2)
	carrier.Inject(ctx, propagation.MapCarrier(m))
	return m
}
