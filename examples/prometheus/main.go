// Command prometheus exports the bizcircle observer hook's counts as
// Prometheus metrics at /metrics, beside the notification endpoint.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./prometheus --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send --repeat 5; go run ./cmd/bizcircle send --tamper
//	curl -s 127.0.0.1:8080/metrics | grep bizcircle_
package main

import (
	"errors"
	"flag"
	"log"
	"net/http"
	"slices"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// metrics turns bizcircle observations into Prometheus metrics. Every label
// value comes from a fixed set, so a flood of forged requests cannot grow
// the number of series.
type metrics struct {
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bizcircle_notifications_total",
			Help: "Notification outcomes: verified, rejected, processed, duplicate, ignored, failed.",
		}, []string{"outcome", "event_type", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bizcircle_stage_duration_seconds",
			Help:    "Time spent verifying and decrypting (stage=verify) and running the deduper and callback (stage=dispatch).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs to 26s
		}, []string{"stage"}),
	}
	reg.MustRegister(m.outcomes, m.duration)
	return m
}

// observe is the bizcircle.WithObserver hook.
func (m *metrics) observe(o bizcircle.Observation) {
	m.outcomes.WithLabelValues(o.Outcome.String(), eventLabel(o.EventType), reason(o.Err)).Inc()
	stage := "dispatch"
	if o.Outcome == bizcircle.OutcomeVerified || (o.Outcome == bizcircle.OutcomeRejected && o.NotificationID == "") {
		stage = "verify"
	}
	m.duration.WithLabelValues(stage).Observe(o.Duration.Seconds())
}

func eventLabel(t string) string {
	switch t {
	case bizcircle.EventPayment, bizcircle.EventRefund, bizcircle.EventAuthorization, "":
		return t
	}
	return "other"
}

// reasons name the errors worth telling apart on a dashboard.
var reasons = []struct {
	err  error
	name string
}{
	{bizcircle.ErrSignature, "signature"},
	{bizcircle.ErrTimestamp, "timestamp"},
	{bizcircle.ErrHeader, "header"},
	{bizcircle.ErrDecrypt, "decrypt"},
	{bizcircle.ErrCallbackPanic, "callback_panic"},
	{bizcircle.ErrCallback, "callback"},
	{bizcircle.ErrInFlight, "in_flight"},
	{bizcircle.ErrDeduper, "deduper"},
}

func reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

// newRouter returns the notification endpoint at POST /wechat/bizcircle,
// reporting to m, and the metrics gathered by reg at GET /metrics.
func newRouter(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, m *metrics, reg prometheus.Gatherer, opts ...bizcircle.Option) (http.Handler, error) {
	h, err := bizcircle.New(apiV3Key, verifier, cb, slices.Concat(opts, []bizcircle.Option{bizcircle.WithObserver(m.observe)})...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /wechat/bizcircle", h)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, nil
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
	reg.MustRegister(prometheus.NewGoCollector())
	r, err := newRouter(apiV3Key, verifier, devkeys.Callbacks(), newMetrics(reg), reg)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s/wechat/bizcircle, metrics at /metrics", *addr)
	log.Fatal(http.ListenAndServe(*addr, r))
}
