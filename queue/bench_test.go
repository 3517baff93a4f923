package queue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// BenchmarkEndpoint compares the queue-mode endpoint with the memory-deduper
// endpoint in the same run: 16 concurrent clients over real HTTP on
// 127.0.0.1, every notification a new event (b.N of them, signed before the
// timer starts), reporting notifications per second and p50/p99 latency.
// The queue stores each notification in PostgreSQL (BIZCIRCLE_PG_URL); no
// worker runs. Run it with a fixed count, e.g. -benchtime=4000x.
func BenchmarkEndpoint(b *testing.B) {
	platform := bizcircletest.NewPlatform() // real time: the window is checked
	pool := newPool(b, "", 64)
	schema := newSchema(b, pool)
	cb := bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
		Refund:  func(context.Context, *bizcircle.RefundEvent) error { return nil },
	}
	queueEndpoint := func(b *testing.B, opts ...queue.Option) http.Handler {
		q, err := queue.New(pool, platform.APIv3Key, platform.Verifier(), cb,
			append([]queue.Option{queue.WithSchema(schema), queue.WithLogger(quiet)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { q.Close() })
		return q.Endpoint()
	}

	b.Run("memory", func(b *testing.B) {
		h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), cb, bizcircle.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		load(b, h, signed(b, platform, b.N))
	})
	b.Run("queue", func(b *testing.B) {
		load(b, queueEndpoint(b), signed(b, platform, b.N))
	})
	b.Run("queue-no-group-commit", func(b *testing.B) {
		load(b, queueEndpoint(b, queue.WithGroupCommit(1, 16)), signed(b, platform, b.N))
	})
}

// signed returns n payment notifications, each a new event, signed on
// every core.
func signed(b *testing.B, p *bizcircletest.Platform, n int) []*bizcircletest.Message {
	b.Helper()
	msgs := make([]*bizcircletest.Message, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				msgs[i] = p.Payment(bizcircletest.SamplePayment())
			}
		})
	}
	wg.Wait()
	return msgs
}

// load posts each message once from 16 concurrent clients and reports
// notifications/s and p50/p99 latency.
func load(b *testing.B, h http.Handler, msgs []*bizcircletest.Message) {
	srv := httptest.NewServer(h) // 127.0.0.1 only
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	b.ResetTimer()
	r := run(b, client, srv.URL, msgs)
	b.StopTimer()
	b.ReportMetric(r.rate(), "notifications/s")
	b.ReportMetric(r.percentile(0.50), "p50-µs")
	b.ReportMetric(r.percentile(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

// A result is one load run: its latencies, sorted, and how long it took.
type result struct {
	latencies []time.Duration
	elapsed   time.Duration
}

func (r result) rate() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

// percentile returns the p-th latency in microseconds.
func (r result) percentile(p float64) float64 {
	return float64(r.latencies[int(p*float64(len(r.latencies)-1))].Microseconds())
}

// run posts each message once from 16 concurrent clients.
func run(b *testing.B, client *http.Client, url string, msgs []*bizcircletest.Message) result {
	const clients = 16
	var next atomic.Int64
	latencies := make([]time.Duration, len(msgs))
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(msgs)); i = next.Add(1) - 1 {
				t0 := time.Now()
				post(b, client, url, msgs[i])
				latencies[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	return result{latencies, elapsed}
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

// awaitCompleted returns a function that waits until n jobs completed,
// counted from River's events; subscribe before the jobs can run.
func awaitCompleted(b *testing.B, q *queue.Queue, n int) func() {
	events, cancel := q.River().SubscribeConfig(&river.SubscribeConfig{
		Kinds: []river.EventKind{river.EventKindJobCompleted}, ChanSize: n + 100,
	})
	return func() {
		defer cancel()
		timeout := time.After(5 * time.Minute)
		for done := 0; done < n; {
			select {
			case e := <-events:
				if e.Job.State == rivertype.JobStateCompleted {
					done++
				}
			case <-timeout:
				b.Fatalf("%d of %d jobs completed after 5 minutes", done, n)
			}
		}
	}
}

// BenchmarkEndpointRatio measures the queue-mode endpoint against the
// memory-deduper endpoint on a shared, noisy machine: the endpoints take
// turns, in rounds of 500 notifications from 16 concurrent clients, b.N
// notifications per endpoint in all. Every endpoint gets the same new
// notifications in a round: each queue variant stores into its own schema
// and the memory deduper forgets keys at once, so each is a new event
// everywhere. It reports each endpoint's median rate over the rounds, the
// median of the per-round ratios to the memory endpoint, and p99 latency
// over all requests. Run it with a fixed count, e.g. -benchtime=8000x.
//
// By default PostgreSQL shares the cores with the server and its clients.
// To measure with PostgreSQL on a core of its own, as in production, pin
// the server's processes to one core and the benchmark to another (Linux):
//
//	for p in $(pgrep postgres); do taskset -pc 1 $p; done
//	go test -c ./queue && taskset -c 0 ./queue.test -test.run '^$' -test.bench EndpointRatio -test.benchtime=12000x
func BenchmarkEndpointRatio(b *testing.B) {
	platform := bizcircletest.NewPlatform()
	pool := newPool(b, "", 64)
	cb := bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	}
	memory, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), cb, bizcircle.WithLogger(quiet),
		bizcircle.WithTTL(time.Nanosecond))
	if err != nil {
		b.Fatal(err)
	}
	names, handlers := []string{"memory"}, []http.Handler{memory}
	for _, v := range endpointVariants() {
		q, err := queue.New(pool, platform.APIv3Key, platform.Verifier(), cb,
			append([]queue.Option{queue.WithSchema(newSchema(b, pool)), queue.WithLogger(quiet)}, v.opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		defer q.Close()
		names, handlers = append(names, v.name), append(handlers, q.Endpoint())
	}

	const round = 500
	rounds := max(1, b.N/round)
	msgs := signed(b, platform, rounds*round)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	urls := make([]string, len(handlers))
	for i, h := range handlers {
		srv := httptest.NewServer(h)
		defer srv.Close()
		urls[i] = srv.URL
	}
	rates := make([][]float64, len(handlers))
	latencies := make([][]time.Duration, len(handlers))
	b.ResetTimer()
	for r := range rounds {
		for i := range handlers {
			res := run(b, client, urls[i], msgs[r*round:(r+1)*round])
			rates[i] = append(rates[i], res.rate())
			latencies[i] = append(latencies[i], res.latencies...)
		}
	}
	b.StopTimer()
	median := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	for i, name := range names {
		lat := latencies[i]
		slices.Sort(lat)
		b.ReportMetric(median(rates[i]), name+"-notifications/s")
		b.ReportMetric(float64(lat[int(0.99*float64(len(lat)-1))].Microseconds()), name+"-p99-µs")
		if i > 0 {
			ratios := make([]float64, rounds)
			for r := range rounds {
				ratios[r] = rates[i][r] / rates[0][r]
			}
			b.ReportMetric(median(ratios), name+"/memory")
		}
	}
	b.ReportMetric(0, "ns/op")
}

type endpointVariant struct {
	name string
	opts []queue.Option
}

// endpointVariants are the queue endpoints BenchmarkEndpointRatio measures.
func endpointVariants() []endpointVariant {
	return []endpointVariant{
		{"queue", nil},
		{"queue-no-group-commit", []queue.Option{queue.WithGroupCommit(1, 16)}},
	}
}

// BenchmarkWorker reports how many notification jobs per second one worker
// process completes, each callback writing a ledger row in the job's
// transaction: with River's default fetch cooldown (100ms) and 16 workers,
// with the queue's defaults (32 workers, 5ms), and with 64 workers. b.N jobs
// are inserted before the timer starts. Run it with a fixed count, e.g.
// -benchtime=3000x.
func BenchmarkWorker(b *testing.B) {
	for _, v := range []struct {
		name string
		opts []queue.Option
	}{
		{"river-defaults-16-workers", []queue.Option{queue.WithWorkers(16), queue.WithFetchCooldown(100 * time.Millisecond)}},
		{"queue-defaults", nil},
		{"64-workers", []queue.Option{queue.WithWorkers(64)}},
	} {
		b.Run(v.name, func(b *testing.B) {
			platform := bizcircletest.NewPlatform()
			pool := newPool(b, "", 64)
			schema := newSchema(b, pool)
			l := newLedger(b, pool, schema)
			cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
				return l.award(ctx, paymentKey(*e), e.OpenID, e.Amount/100)
			}}
			q, err := queue.New(pool, platform.APIv3Key, platform.Verifier(), cb,
				append([]queue.Option{queue.WithSchema(schema), queue.WithLogger(quiet)}, v.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			msgs := signed(b, platform, b.N)
			for chunk := range slices.Chunk(msgs, 500) {
				params := make([]river.InsertManyParams, len(chunk))
				for i, m := range chunk {
					var p bizcircle.PaymentEvent
					if err := json.Unmarshal(m.Plaintext, &p); err != nil {
						b.Fatal(err)
					}
					params[i] = river.InsertManyParams{Args: argsOf(m, paymentKey(p))}
				}
				if _, err := q.River().InsertMany(context.Background(), params); err != nil {
					b.Fatal(err)
				}
			}
			wait := awaitCompleted(b, q, b.N)
			b.ResetTimer()
			start := time.Now()
			if err := q.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkSyncWorker reports how many points syncs per second one process
// sends to the fake WeChat Pay API (a TLS connection per call, as the fake
// closes each), with 4 and 16 sync workers. b.N syncs are enqueued before
// the timer starts.
func BenchmarkSyncWorker(b *testing.B) {
	for _, workers := range []int{queue.DefaultSyncWorkers, 16} {
		b.Run(fmt.Sprintf("%d-workers", workers), func(b *testing.B) {
			platform := bizcircletest.NewPlatform()
			api := bizcircletest.NewAPIServer(platform, bizcircletest.NewMerchant())
			defer api.Close()
			points, err := client.New(api.NewClient())
			if err != nil {
				b.Fatal(err)
			}
			pool := newPool(b, "", 64)
			schema := newSchema(b, pool)
			q, err := queue.New(pool, platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }},
				queue.WithSchema(schema), queue.WithLogger(quiet), queue.WithPointsClient(points, workers))
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			ctx := context.Background()
			tx, err := pool.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				p := bizcircletest.SamplePayment()
				if _, err := q.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(&p, 2, time.Now())); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			wait := awaitCompleted(b, q, b.N)
			b.ResetTimer()
			start := time.Now()
			if err := q.Start(ctx); err != nil {
				b.Fatal(err)
			}
			wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "syncs/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
