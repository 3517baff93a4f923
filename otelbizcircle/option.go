package otelbizcircle

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// An Option configures [Instrument].
type Option func(*config)

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
}

// newConfig resolves the defaults when Instrument is called. OpenTelemetry's
// global providers forward to whatever is installed later, so the order in
// which an application sets them up does not matter.
func newConfig(opts []Option) config {
	c := config{
		tracerProvider: otel.GetTracerProvider(),
		meterProvider:  otel.GetMeterProvider(),
		propagator:     otel.GetTextMapPropagator(),
	}
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

// WithTracerProvider sets the provider of the tracer that starts each
// delivery's span; nil keeps the default. Default: otel.GetTracerProvider(),
// the global one, which forwards to a provider installed later with
// otel.SetTracerProvider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tracerProvider = tp
		}
	}
}

// WithMeterProvider sets the provider of the meter that records the
// metrics; nil keeps the default. Default: otel.GetMeterProvider(), the
// global one, which forwards to a provider installed later with
// otel.SetMeterProvider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.meterProvider = mp
		}
	}
}

// WithPropagator sets the propagator that reads an incoming trace context
// (such as a traceparent header added by a gateway) from the notification
// request's headers; nil keeps the default. Queue mode's link from a
// worker's span to the receiving one always uses W3C Trace Context, whatever
// is set here. Default: otel.GetTextMapPropagator(), the global one, which
// forwards to a propagator installed later with otel.SetTextMapPropagator
// (and reads nothing until one is).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.propagator = p
		}
	}
}
