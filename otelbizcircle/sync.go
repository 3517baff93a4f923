package otelbizcircle

import (
	"context"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/client"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// syncSpanName names the span of an attempt to send a points sync.
const syncSpanName = "WeChatPay points sync"

// metricSyncAttempts counts the attempts to send a points sync.
const metricSyncAttempts = "bizcircle.sync.attempts"

// keySyncResult is an attempt's [client.SyncResult]: sent, retried,
// refused or discarded.
const keySyncResult = attribute.Key("bizcircle.sync.result")

// InstrumentSync returns the [client.SyncHook] that gives each attempt of
// queue mode's sync worker a Consumer span, with the span of the call to
// WeChat Pay ([InstrumentClient]) under it, and counts the attempts by
// result (see the package documentation). Pass it to queue.WithSyncHook:
//
//	queue.WithSyncHook(otelbizcircle.InstrumentSync())
//
// The providers are resolved when InstrumentSync is called (see the
// options for the defaults); WithPropagator does not apply.
func InstrumentSync(opts ...Option) client.SyncHook {
	c := newConfig(opts)
	s := &syncInstrumentation{tracer: c.tracerProvider.Tracer(ScopeName)}
	var err error
	if s.attempts, err = c.meterProvider.Meter(ScopeName).Int64Counter(metricSyncAttempts, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts to send a points sync to WeChat Pay, by result: sent, retried, refused or discarded.")); err != nil {
		otel.Handle(err)
	}
	return client.SyncHook{Start: s.start, End: s.end}
}

type syncInstrumentation struct {
	tracer   trace.Tracer
	attempts metric.Int64Counter
}

type syncSpanKey struct{}

// syncOptions start an attempt's span: made once, as kindOptions.
var syncOptions = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}

// start opens the attempt's Consumer span, with its job's messaging
// attributes; its parent is the span in ctx, if any (a River
// instrumentation's).
func (s *syncInstrumentation) start(ctx context.Context, j bizcircle.Job) context.Context {
	ctx, span := s.tracer.Start(ctx, syncSpanName, append(syncOptions[:1:1], trace.WithAttributes(jobAttributes(j)...))...)
	return context.WithValue(ctx, syncSpanKey{}, span)
}

// end counts the attempt, sets its span's result and status, and ends it.
// The status names the failure without err's text, which holds WeChat
// Pay's message.
func (s *syncInstrumentation) end(ctx context.Context, r client.SyncResult, err error) {
	attrs := make([]attribute.KeyValue, 0, 2)
	attrs = append(attrs, keySyncResult.String(r.String()))
	if err != nil {
		attrs = append(attrs, keyErrorType.String(ErrorType(err)))
	}
	if s.attempts.Enabled(ctx) {
		s.attempts.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
	span, ok := ctx.Value(syncSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	span.SetAttributes(attrs...)
	if err != nil {
		span.SetStatus(codes.Error, statusText(err, "bizcircle: points sync failed"))
	}
	span.End()
}
