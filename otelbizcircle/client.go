package otelbizcircle

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"

	"github.com/go-bizcircle/bizcircle/client"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentClient returns the [client.Option] that gives each HTTP request
// a [client.Client] sends to WeChat Pay a Client span, after OpenTelemetry's
// HTTP client conventions (see the package documentation). The span's
// parent is the span in the call's ctx: a notification's, for a callback
// that calls the client, or the sync worker's ([InstrumentSync]).
//
// The tracer provider is resolved when InstrumentClient is called (see
// [WithTracerProvider]); the other options do not apply.
func InstrumentClient(opts ...Option) client.Option {
	c := newConfig(opts)
	tracer := c.tracerProvider.Tracer(ScopeName)
	return client.WithHook(client.Hook{
		Request: func(ctx context.Context, r client.RequestInfo, send func(context.Context) (int, error)) {
			ctx, span := tracer.Start(ctx, r.Method+" "+r.Template, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(requestAttributes(r)...))
			defer span.End()
			status, err := send(ctx)
			if status > 0 {
				span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			}
			if status >= 400 || err != nil {
				// A client's 4xx is an error too; the text of err is not
				// recorded: a network error's holds the URL.
				span.SetAttributes(keyErrorType.String(httpErrorType(status, err)))
				span.SetStatus(codes.Error, "")
			}
		},
	})
}

// requestAttributes are a request's attributes known before it is sent.
func requestAttributes(r client.RequestInfo) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs,
		semconv.HTTPRequestMethodKey.String(r.Method),
		semconv.URLFull(r.URL),
		semconv.URLTemplate(r.Template))
	if u, err := url.Parse(r.URL); err == nil {
		port := u.Port()
		switch {
		case port != "":
		case u.Scheme == "https":
			port = "443"
		case u.Scheme == "http":
			port = "80"
		}
		attrs = append(attrs, semconv.ServerAddress(u.Hostname()))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
	}
	if r.Attempt > 1 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(r.Attempt-1))
	}
	return attrs
}

// httpErrorType is a request's error.type: the status code of an error
// answer, "timeout" for a request that timed out, else [ErrorType].
func httpErrorType(status int, err error) string {
	if status >= 400 {
		return strconv.Itoa(status)
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	return ErrorType(err)
}
