package bizcircle_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
)

// BenchmarkLoad sends notifications over real HTTP on 127.0.0.1 from 16
// concurrent clients and reports notifications per second and p50/p99
// latency: bizcircle with the memory deduper, fresh and duplicate, beside
// the same server doing only wechatpay-go's ParseNotifyRequest. The number
// of requests is b.N: it stops by itself.
func BenchmarkLoad(b *testing.B) {
	wechat := bizcircletest.NewPlatform() // real time: wechatpay-go checks it
	msgs := make([]*bizcircletest.Message, 256)
	for i := range msgs {
		msgs[i] = wechat.Payment(bizcircletest.SamplePayment())
	}
	endpoint := func(d bizcircle.Deduper) http.Handler {
		h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
			Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
		}, bizcircle.WithDeduper(d), bizcircle.WithLogger(discardLogger))
		if err != nil {
			b.Fatal(err)
		}
		return h
	}

	// A completed key that expires at once makes every delivery fresh while
	// going through the real MemoryDeduper.
	b.Run("bizcircle-fresh", func(b *testing.B) {
		load(b, endpoint(memory(b, bizcircle.WithTTL(time.Nanosecond))), msgs)
	})
	b.Run("bizcircle-duplicate", func(b *testing.B) {
		load(b, endpoint(memory(b)), msgs)
	})
	b.Run("wechatpay-go", func(b *testing.B) {
		nh, err := notify.NewRSANotifyHandler(wechat.APIv3Key, wechat.Verifier())
		if err != nil {
			b.Fatal(err)
		}
		load(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var e bizcircle.PaymentEvent
			if _, err := nh.ParseNotifyRequest(r.Context(), r, &e); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}), msgs)
	})
}

func load(b *testing.B, h http.Handler, msgs []*bizcircletest.Message) {
	srv := httptest.NewServer(h) // 127.0.0.1 only
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()

	// Warm up the connections, and complete every key for the duplicates.
	for _, m := range msgs {
		post(b, client, srv.URL, m)
	}

	var next atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			m := msgs[next.Add(1)%int64(len(msgs))]
			t0 := time.Now()
			post(b, client, srv.URL, m)
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds())
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "notifications/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

func post(b *testing.B, client *http.Client, url string, m *bizcircletest.Message) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(m.Body))
	req.Header = m.Header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b.Errorf("status %d", resp.StatusCode)
	}
}
