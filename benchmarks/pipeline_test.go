// Package benchmarks compares bizcircle with other Go SDKs for WeChat Pay on
// the same notification. It is its own module, so that the SDKs it measures
// never enter the library's go.mod.
package benchmarks_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

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

// A pipeline serves the notification once: verify the RSA signature with
// the platform public key, decrypt the AES-GCM resource, decode the payment.
type pipeline struct {
	name string
	step func() error
}

// pipelines returns bizcircle's endpoint (with its callback),
// wechatpay-go's notify.Handler.ParseNotifyRequest, and gopay's
// V3ParseNotify, VerifySignByPK and DecryptCipherTextToStruct, each reading
// m's body from one reused request, as a server reuses its buffers.
// bizcircle and wechatpay-go also check the timestamp; gopay does not.
func pipelines(tb testing.TB, platform *bizcircletest.Platform, m *bizcircletest.Message) []pipeline {
	var sink int64
	r := m.Request("/notify")
	rewind := func() { r.Body = io.NopCloser(bytes.NewReader(m.Body)) }

	h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(_ context.Context, e *bizcircle.PaymentEvent) error { sink += e.Amount; return nil },
	}, bizcircle.WithDeduper(alwaysRun{}), bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		tb.Fatal(err)
	}
	w := &discardWriter{h: http.Header{}}

	wh, err := notify.NewRSANotifyHandler(platform.APIv3Key, platform.Verifier())
	if err != nil {
		tb.Fatal(err)
	}
	pub := &platform.Key.PublicKey

	return []pipeline{
		{"bizcircle", func() error {
			rewind()
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusNoContent {
				return fmt.Errorf("status %d", w.code)
			}
			return nil
		}},
		{"wechatpay-go", func() error {
			rewind()
			var e bizcircle.PaymentEvent
			if _, err := wh.ParseNotifyRequest(context.Background(), r, &e); err != nil {
				return err
			}
			sink += e.Amount
			return nil
		}},
		{"gopay", func() error {
			rewind()
			n, err := gopay.V3ParseNotify(r)
			if err != nil {
				return err
			}
			if err := n.VerifySignByPK(pub); err != nil {
				return err
			}
			var e bizcircle.PaymentEvent
			if err := n.DecryptCipherTextToStruct(platform.APIv3Key, &e); err != nil {
				return err
			}
			sink += e.Amount
			return nil
		}},
	}
}

// BenchmarkPipeline compares, in one run, the three pipelines on one fresh
// payment notification.
func BenchmarkPipeline(b *testing.B) {
	platform := bizcircletest.NewPlatform() // signs at time.Now, as wechatpay-go checks it
	m := platform.Payment(bizcircletest.SamplePayment())
	for _, p := range pipelines(b, platform, m) {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuNanos()
			for b.Loop() {
				if err := p.step(); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkPipelineRatio runs the three pipelines in turn within each
// iteration, timing each call, so that the machine's load weighs on all
// three alike, and reports each one's time per call and bizcircle's
// ratio to the other two: on a shared machine these ratios are steadier
// than those of BenchmarkPipeline's separate sub-benchmarks.
func BenchmarkPipelineRatio(b *testing.B) {
	platform := bizcircletest.NewPlatform()
	m := platform.Payment(bizcircletest.SamplePayment())
	ps := pipelines(b, platform, m)
	spent := make([]time.Duration, len(ps))
	i := 0
	for b.Loop() {
		for j := range ps {
			k := (i + j) % len(ps) // rotate the order, so none always runs first
			start := time.Now()
			if err := ps[k].step(); err != nil {
				b.Fatal(err)
			}
			spent[k] += time.Since(start)
		}
		i++
	}
	for k, p := range ps {
		b.ReportMetric(float64(spent[k].Nanoseconds())/float64(b.N), p.name+"-ns/op")
	}
	for k := 1; k < len(ps); k++ {
		b.ReportMetric(float64(spent[0])/float64(spent[k]), ps[0].name+"/"+ps[k].name)
	}
	b.ReportMetric(0, "ns/op") // the three together: not a figure to read
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
