// Command otel serves the bizcircle endpoint instrumented with
// OpenTelemetry: each notification's span, with the span its callback
// starts nested under it, is printed to stdout, and the metrics are served
// at /metrics by OpenTelemetry's Prometheus exporter.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./otel --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send --repeat 2; go run ./cmd/bizcircle send --tamper
//	curl -s 127.0.0.1:8080/metrics | grep bizcircle_
//
// In production, export spans with a batching OTLP exporter (to Jaeger,
// SkyWalking or a collector) instead of stdout.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// setupOTel installs the global tracer and meter providers and propagator:
// spans are written to w, metrics are gathered by reg. The returned func
// flushes and stops them.
func setupOTel(w io.Writer, reg prometheus.Registerer) (shutdown func(context.Context) error, err error) {
	spans, err := stdouttrace.New(stdouttrace.WithWriter(w), stdouttrace.WithPrettyPrint())
	if err != nil {
		return nil, err
	}
	metrics, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	// WithSyncer prints each span as it ends; production uses WithBatcher.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(metrics))
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	// Read a traceparent that a gateway in front of the endpoint adds.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx), mp.Shutdown(ctx))
	}, nil
}

// newRouter returns the notification endpoint at POST /wechat/bizcircle,
// traced and measured with the global providers, and the metrics that reg
// gathers at GET /metrics.
func newRouter(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, reg prometheus.Gatherer, opts ...bizcircle.Option) (http.Handler, error) {
	h, err := bizcircle.New(apiV3Key, verifier, cb, append(opts, otelbizcircle.Instrument())...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /wechat/bizcircle", h)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, nil
}

// callbacks are the examples' callbacks, the payment one starting a span
// of its own, as a database or HTTP client instrumented with OpenTelemetry
// would: it nests under the notification's span.
func callbacks() bizcircle.CallbackFuncs {
	cb := devkeys.Callbacks()
	award := cb.Payment
	cb.Payment = func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		ctx, span := otel.Tracer("example/points").Start(ctx, "award points")
		defer span.End()
		return award(ctx, e)
	}
	return cb
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	keys := flag.String("keys", devkeys.DefaultDir, "directory written by 'bizcircle keygen'")
	flag.Parse()
	apiV3Key, verifier, err := devkeys.Load(*keys)
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	shutdown, err := setupOTel(os.Stdout, reg)
	if err != nil {
		log.Fatal(err)
	}
	defer shutdown(context.Background())
	r, err := newRouter(apiV3Key, verifier, callbacks(), reg)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s/wechat/bizcircle, metrics at /metrics", *addr)
	log.Print(http.ListenAndServe(*addr, r))
}
