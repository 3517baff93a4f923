package otelbizcircle_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A payment's span, with the span its callback starts nested under it. In
// an application, otelbizcircle.Instrument() alone uses the global
// providers.
func ExampleInstrument() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	wechat := bizcircletest.NewPlatform() // plays WeChat Pay
	h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			_, span := tp.Tracer("mall/points").Start(ctx, "award points")
			defer span.End()
			return nil
		},
	}, otelbizcircle.Instrument(otelbizcircle.WithTracerProvider(tp)))
	if err != nil {
		panic(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, wechat.Payment(bizcircletest.SamplePayment()).Request("/wechat/bizcircle"))
	fmt.Println(w.Code)

	ended := spans.Ended()
	child, delivery := ended[0], ended[1]
	fmt.Printf("%q (%s)\n", delivery.Name(), delivery.SpanKind())
	fmt.Printf("  child %q: %v\n", child.Name(), child.Parent().SpanID() == delivery.SpanContext().SpanID())
	for _, kv := range delivery.Attributes() {
		switch kv.Key {
		case "bizcircle.event_type", "bizcircle.outcome", "bizcircle.dedupe":
			fmt.Printf("  %s=%s\n", kv.Key, kv.Value.Emit())
		}
	}
	// Output:
	// 204
	// "WeChatPay MALL_TRANSACTION.SUCCESS" (server)
	//   child "award points": true
	//   bizcircle.event_type=MALL_TRANSACTION.SUCCESS
	//   bizcircle.outcome=processed
	//   bizcircle.dedupe=new
}

// The notification counter after a payment and a forged request.
func ExampleWithMeterProvider() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	wechat := bizcircletest.NewPlatform()
	h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	}, otelbizcircle.Instrument(otelbizcircle.WithMeterProvider(mp)), bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	m := wechat.Payment(bizcircletest.SamplePayment())
	h.ServeHTTP(httptest.NewRecorder(), m.Request("/wechat/bizcircle"))
	r := m.Request("/wechat/bizcircle")
	r.Header.Set(bizcircle.HeaderSignature, bizcircle.SignTestPrefix+"probe")
	h.ServeHTTP(httptest.NewRecorder(), r)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "bizcircle.notifications" {
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				outcome, _ := dp.Attributes.Value("bizcircle.outcome")
				errType, _ := dp.Attributes.Value("error.type")
				fmt.Printf("%s %q: %d\n", outcome.Emit(), errType.Emit(), dp.Value)
			}
		}
	}
	// Unordered output:
	// verified "": 1
	// processed "": 1
	// rejected "ErrSignature": 1
}

// A points sync's call to WeChat Pay (here a fake of its API) as a Client
// span. In an application, otelbizcircle.InstrumentClient() alone uses the
// global provider.
func ExampleInstrumentClient() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	api := bizcircletest.NewAPIServer(bizcircletest.NewPlatform(), bizcircletest.NewMerchant())
	defer api.Close()
	points, err := client.New(api.NewClient(), otelbizcircle.InstrumentClient(otelbizcircle.WithTracerProvider(tp)))
	if err != nil {
		panic(err)
	}
	pay := bizcircletest.SamplePayment()
	if err := points.SyncPoints(context.Background(), client.NewSyncPointsRequest(&pay, 2, time.Now())); err != nil {
		panic(err)
	}

	span := spans.Ended()[0]
	fmt.Printf("%q (%s)\n", span.Name(), span.SpanKind())
	for _, kv := range span.Attributes() {
		fmt.Printf("  %s=%s\n", kv.Key, kv.Value.Emit())
	}
	// Output:
	// "POST /v3/businesscircle/points/notify" (client)
	//   http.request.method=POST
	//   url.full=https://api.mch.weixin.qq.com/v3/businesscircle/points/notify
	//   url.template=/v3/businesscircle/points/notify
	//   server.address=api.mch.weixin.qq.com
	//   server.port=443
	//   http.response.status_code=204
}
