package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newInstrumentedQueue is queue mode wired for OpenTelemetry as the README
// shows it: the deliveries (Instrument), the points-sync worker
// (InstrumentSync) and its calls to WeChat Pay (InstrumentClient), here on
// the providers opts name instead of the global ones.
func newInstrumentedQueue(pool *pgxpool.Pool, apiV3Key string, verifier auth.Verifier, api *core.Client,
	cb bizcircle.Callbacks, tel []otelbizcircle.Option, opts ...queue.Option) (*queue.Queue, error) {
	points, err := client.New(api, otelbizcircle.InstrumentClient(tel...))
	if err != nil {
		return nil, err
	}
	return queue.New(pool, apiV3Key, verifier, cb, append([]queue.Option{
		queue.WithBizcircle(otelbizcircle.Instrument(tel...)),
		queue.WithPointsClient(points, queue.DefaultSyncWorkers),
		queue.WithSyncHook(otelbizcircle.InstrumentSync(tel...)),
	}, opts...)...)
}

// immediately retries failed jobs at once.
type immediately struct{}

func (immediately) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestQueueModeTelemetry runs queue mode against PostgreSQL and a fake
// WeChat Pay API: two forged rows, then three payments whose points syncs
// WeChat Pay accepts, answers 500 then accepts, and refuses with a 400.
// Every job is in the spans and the metrics.
func TestQueueModeTelemetry(t *testing.T) {
	url := testenv.Server(t, "BIZCIRCLE_PG_URL",
		"this test needs PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	schema := "otel_" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	quiet := slog.New(slog.DiscardHandler)
	if err := queue.Migrate(ctx, pool, queue.WithSchema(schema), queue.WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}

	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tel := []otelbizcircle.Option{
		otelbizcircle.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))),
		otelbizcircle.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
	}
	wechat := bizcircletest.NewPlatform()
	api := bizcircletest.NewAPIServer(wechat, bizcircletest.NewMerchant())
	t.Cleanup(api.Close)
	var q *queue.Queue
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		tx, _ := queue.Tx(ctx)
		_, err := q.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(e, e.Amount/100, time.Now()))
		return err
	}}
	var logs lockedBuffer
	q, err = newInstrumentedQueue(pool, wechat.APIv3Key, wechat.Verifier(), api.NewClient(), cb, tel,
		queue.WithSchema(schema), queue.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), queue.WithRetryPolicy(immediately{}),
		queue.WithRiverConfig(func(c *river.Config) { c.TestOnly, c.FetchPollInterval = true, 20*time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	events, unsubscribe := q.River().Subscribe(river.EventKindJobCompleted, river.EventKindJobCancelled)
	defer unsubscribe()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// settled waits for the next job of kind to complete or be cancelled.
	settled := func(kind string, want rivertype.JobState) *rivertype.JobRow {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Job.Kind != kind {
					continue
				}
				if ev.Job.State != want {
					t.Fatalf("%s job %d is %s (errors %v), want %s", kind, ev.Job.ID, ev.Job.State, ev.Job.Errors, want)
				}
				return ev.Job
			case <-time.After(30 * time.Second): // a deadline: events come in milliseconds
				t.Fatalf("no %s job %s in 30s", kind, want)
				return nil
			}
		}
	}

	// Two rows written into River's table without WeChat Pay's key.
	for range 2 {
		m := wechat.Payment(bizcircletest.SamplePayment())
		args := queue.NotificationArgs{Key: bizcircle.EventPayment + ":forged", EventType: m.EventType, NotificationID: m.ID,
			Signed: bizcircle.SignedRequest{Timestamp: m.Header.Get(bizcircle.HeaderTimestamp), Nonce: m.Header.Get(bizcircle.HeaderNonce),
				Signature: "Zm9yZ2Vk", Serial: m.Header.Get(bizcircle.HeaderSerial), Body: m.Body}}
		if _, err := q.River().Insert(ctx, args, nil); err != nil {
			t.Fatal(err)
		}
		settled(queue.KindNotification, rivertype.JobStateCancelled)
	}
	// Three payments, each synced.
	syncs := map[string][]string{} // sync job ID → its attempts' results, as the spans must tell
	for _, c := range []struct {
		fail    func()
		state   rivertype.JobState
		results []string
	}{
		{func() {}, rivertype.JobStateCompleted, []string{"sent"}},
		{func() { api.FailNext(1, bizcircletest.FailSystemError) }, rivertype.JobStateCompleted, []string{"retried", "sent"}},
		{func() { api.FailNext(1, bizcircletest.FailParamError) }, rivertype.JobStateCancelled, []string{"refused"}},
	} {
		c.fail()
		rec := httptest.NewRecorder()
		q.Endpoint().ServeHTTP(rec, wechat.Payment(bizcircletest.SamplePayment()).Request("/wechat/bizcircle"))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("status %d, want 204", rec.Code)
		}
		settled(queue.KindNotification, rivertype.JobStateCompleted)
		job := settled(queue.KindSyncPoints, c.state)
		syncs[itoa(job.ID)] = c.results
	}

	// The workers' spans: the forged rows rejected, the payments processed.
	var rejected, processed int
	attempts := map[string][]string{} // sync job ID → results
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	ended := spans.Ended()
	for _, s := range ended {
		byID[s.SpanContext().SpanID()] = s
	}
	for _, s := range ended {
		a := attrs(s.Attributes())
		switch {
		case s.SpanKind() == trace.SpanKindConsumer && a["messaging.destination.name"] == queue.QueueNotifications:
			switch a["bizcircle.outcome"] {
			case "rejected":
				rejected++
				if a["error.type"] != "ErrUnverified" || s.Status().Code != codes.Error || a["messaging.system"] != "river" {
					t.Errorf("forged row's span %q: %v, status %v; want error.type ErrUnverified, an error", s.Name(), a, s.Status())
				}
			case "processed":
				processed++
			default:
				t.Errorf("worker span %q: outcome %q", s.Name(), a["bizcircle.outcome"])
			}
		case s.SpanKind() == trace.SpanKindConsumer && s.Name() == "WeChatPay points sync":
			attempts[a["messaging.message.id"]] = append(attempts[a["messaging.message.id"]], a["bizcircle.sync.result"])
		case s.SpanKind() == trace.SpanKindClient:
			parent, ok := byID[s.Parent().SpanID()]
			if !ok || parent.Name() != "WeChatPay points sync" || s.Name() != "POST /v3/businesscircle/points/notify" {
				t.Errorf("client span %q is not under a points sync span", s.Name())
				continue
			}
			if got, want := a["http.response.status_code"], map[string]string{"sent": "204", "retried": "500", "refused": "400"}[attrs(parent.Attributes())["bizcircle.sync.result"]]; got != want {
				t.Errorf("the %s attempt's request answered %s, want %s", attrs(parent.Attributes())["bizcircle.sync.result"], got, want)
			}
		}
	}
	if rejected != 2 || processed != 3 {
		t.Errorf("worker spans: %d rejected, %d processed; want 2 forged rows, 3 payments", rejected, processed)
	}
	for id, want := range syncs {
		if !slices.Equal(attempts[id], want) {
			t.Errorf("sync job %s: attempts %v, want %v", id, attempts[id], want)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "bizcircle.sync.attempts" && m.Name != "bizcircle.notifications" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if m.Name == "bizcircle.sync.attempts" || dp.Attributes.HasValue("error.type") {
					got[m.Name+"{"+dp.Attributes.Encoded(attribute.DefaultEncoder())+"}"] += dp.Value
				}
			}
		}
	}
	for series, want := range map[string]int64{
		"bizcircle.notifications{bizcircle.outcome=rejected,error.type=ErrUnverified}":     2,
		"bizcircle.sync.attempts{bizcircle.sync.result=sent}":                              2,
		"bizcircle.sync.attempts{bizcircle.sync.result=retried,error.type=500}":            1,
		"bizcircle.sync.attempts{bizcircle.sync.result=refused,error.type=ErrSyncRefused}": 1,
	} {
		if got[series] != want {
			t.Errorf("%s = %d, want %d (all: %v)", series, got[series], want, got)
		}
	}
	if n := logs.count(`msg="bizcircle: stored notification rejected"`); n != 1 {
		t.Errorf("%d warnings for 2 forged rows, want 1 (one a minute)", n)
	}
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
