// Package benchmarks compares bizcircle with other Go SDKs for WeChat Pay on
// the same notification. It is its own module, so that the SDKs it measures
// never enter the library's go.mod.
package benchmarks_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	gopay "github.com/go-pay/gopay/wechat/v3"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
)

// alwaysRun is a Deduper that runs every time, so each iteration of the
// benchmark dispatches a fresh event.
type alwaysRun struct{}

func (alwaysRun) Do(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// reportCPU adds cpu-ns/op to b's results: the CPU time the process used per
// iteration since start (a cpuNanos reading), garbage collection included.
// On a machine shared with other work, ns/op also counts the time others
// hold the CPU; cpu-ns/op does not, so it compares better across runs.
func reportCPU(b *testing.B, start int64) {
	if end := cpuNanos(); start >= 0 && end >= 0 && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkPipeline compares, in one run, the verify+decrypt+parse of one
// fresh payment notification through the bizcircle endpoint (with its
// callback), wechatpay-go's notify.Handler.ParseNotifyRequest, and gopay's
// V3ParseNotify, VerifySignByPK and DecryptCipherTextToStruct. All three
// read the body from the same reused request, verify the RSA signature
// with the platform public key, decrypt the AES-GCM resource and decode the
// payment; bizcircle and wechatpay-go also check the timestamp, gopay does
// not.
func BenchmarkPipeline(b *testing.B) {
	platform := bizcircletest.NewPlatform() // signs at time.Now, as wechatpay-go checks it
	m := platform.Payment(bizcircletest.SamplePayment())
	var sink int64

	r := m.Request("/notify")
	rewind := func() { r.Body = io.NopCloser(bytes.NewReader(m.Body)) }

	b.Run("bizcircle", func(b *testing.B) {
		h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{
			Payment: func(_ context.Context, e *bizcircle.PaymentEvent) error { sink += e.Amount; return nil },
		}, bizcircle.WithDeduper(alwaysRun{}), bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			b.Fatal(err)
		}
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		cpu := cpuNanos()
		for b.Loop() {
			rewind()
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusNoContent {
				b.Fatalf("status %d", w.code)
			}
		}
		reportCPU(b, cpu)
	})

	b.Run("wechatpay-go", func(b *testing.B) {
		h, err := notify.NewRSANotifyHandler(platform.APIv3Key, platform.Verifier())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu := cpuNanos()
		for b.Loop() {
			rewind()
			var e bizcircle.PaymentEvent
			if _, err := h.ParseNotifyRequest(context.Background(), r, &e); err != nil {
				b.Fatal(err)
			}
			sink += e.Amount
		}
		reportCPU(b, cpu)
	})

	b.Run("gopay", func(b *testing.B) {
		pub := &platform.Key.PublicKey
		b.ReportAllocs()
		cpu := cpuNanos()
		for b.Loop() {
			rewind()
			n, err := gopay.V3ParseNotify(r)
			if err != nil {
				b.Fatal(err)
			}
			if err := n.VerifySignByPK(pub); err != nil {
				b.Fatal(err)
			}
			var e bizcircle.PaymentEvent
			if err := n.DecryptCipherTextToStruct(platform.APIv3Key, &e); err != nil {
				b.Fatal(err)
			}
			sink += e.Amount
		}
		reportCPU(b, cpu)
	})
	_ = sink
}

// TestPipelineAgrees checks that the three decode the same payment.
func TestPipelineAgrees(t *testing.T) {
	platform := bizcircletest.NewPlatform()
	want := bizcircletest.SamplePayment()
	m := platform.Payment(want)

	var got []bizcircle.PaymentEvent
	h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(_ context.Context, e *bizcircle.PaymentEvent) error { got = append(got, *e); return nil },
	}, bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, m.Request("/notify"))
	if w.code != http.StatusNoContent {
		t.Fatalf("bizcircle: status %d", w.code)
	}

	nh, err := notify.NewRSANotifyHandler(platform.APIv3Key, platform.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	var e bizcircle.PaymentEvent
	if _, err := nh.ParseNotifyRequest(context.Background(), m.Request("/notify"), &e); err != nil {
		t.Fatalf("wechatpay-go: %v", err)
	}
	got = append(got, e)

	n, err := gopay.V3ParseNotify(m.Request("/notify"))
	if err != nil {
		t.Fatalf("gopay: %v", err)
	}
	if err := n.VerifySignByPK(&platform.Key.PublicKey); err != nil {
		t.Fatalf("gopay: %v", err)
	}
	e = bizcircle.PaymentEvent{}
	if err := n.DecryptCipherTextToStruct(platform.APIv3Key, &e); err != nil {
		t.Fatalf("gopay: %v", err)
	}
	got = append(got, e)

	for i, name := range []string{"bizcircle", "wechatpay-go", "gopay"} {
		if !got[i].TimeEnd.Equal(want.TimeEnd) || got[i].TransactionID != want.TransactionID || got[i].Amount != want.Amount {
			t.Errorf("%s decoded %+v, want %+v", name, got[i], want)
		}
	}
}
