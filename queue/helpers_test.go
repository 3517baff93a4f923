package queue_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// pgURL returns the test server's URL. Without one the test skips, or fails
// under CI, which always provides a server.
func pgURL(t testing.TB) string {
	t.Helper()
	return testenv.Server(t, "BIZCIRCLE_PG_URL",
		"queue tests need PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
}

// unique returns prefix and a random lower-case suffix: a fresh identifier.
func unique(prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text()[:12])
}

// newPool connects a pool to url (the test server's when ""), closed when
// the test ends.
func newPool(t testing.TB, url string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	if url == "" {
		url = pgURL(t)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "queue_test"
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newSchema migrates River's tables into a fresh schema, dropped with
// everything in it when the test ends, so tests can run again and side by
// side.
func newSchema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	schema := unique("queue")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := queue.Migrate(context.Background(), pool, queue.WithSchema(schema), queue.WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
	return schema
}

// quiet discards River's and the kit's logs.
var quiet = slog.New(slog.DiscardHandler)

// A ledger is a points ledger without a unique constraint, so a callback
// whose writes committed twice shows as two rows.
type ledger struct {
	pool  *pgxpool.Pool
	ident string
}

func newLedger(t testing.TB, pool *pgxpool.Pool, schema string) ledger {
	t.Helper()
	l := ledger{pool, pgx.Identifier{schema, "ledger"}.Sanitize()}
	_, err := pool.Exec(context.Background(), `CREATE TABLE `+l.ident+` (
		id        bigserial PRIMARY KEY,
		event_key text   NOT NULL,
		openid    text   NOT NULL,
		points    bigint NOT NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// award inserts a ledger row in the callback's transaction: the queue job's,
// or pgdedupe's in the modes a mall switches from; a Redis callback, which
// has none, writes through the pool.
func (l ledger) award(ctx context.Context, key, openID string, points int64) error {
	var db interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	} = l.pool
	if tx, ok := callbackTx(ctx); ok {
		db = tx
	}
	_, err := db.Exec(ctx, `INSERT INTO `+l.ident+` (event_key, openid, points) VALUES ($1, $2, $3)`, key, openID, points)
	return err
}

// callbackTx returns the transaction of the queue job or pgdedupe delivery
// running the callback that got ctx.
func callbackTx(ctx context.Context) (pgx.Tx, bool) {
	if tx, ok := queue.Tx(ctx); ok {
		return tx, true
	}
	return pgdedupe.Tx(ctx)
}

// A syncer enqueues points syncs: a Queue or an Outbox.
type syncer interface {
	SyncPointsTx(ctx context.Context, tx pgx.Tx, r client.SyncPointsRequest) (bool, error)
}

// rows returns how many ledger rows key has.
func (l ledger) rows(t testing.TB, key string) int {
	t.Helper()
	var n int
	if err := l.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+l.ident+` WHERE event_key = $1`, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A mall is the callbacks under test: each event awards points in the
// ledger, after an optional hook that may fail, panic or block.
type mall struct {
	ledger ledger
	runs   sync.Map // event key → *atomic.Int32, callback runs
	// before runs in each callback after its writes (the ledger row and the
	// sync), before it returns, with the event key and the run number (1 for
	// the first); its error fails the callback.
	before func(ctx context.Context, key string, run int32) error
	// syncs, when set, enqueues a points sync for each payment, in the
	// callback's transaction.
	syncs syncer
}

func (m *mall) run(ctx context.Context, key, openID string, points int64, then func() error) error {
	c, _ := m.runs.LoadOrStore(key, new(atomic.Int32))
	run := c.(*atomic.Int32).Add(1)
	if _, ok := bizcircle.NotificationFromContext(ctx); !ok {
		return fmt.Errorf("no Notification in the callback's context")
	}
	if err := m.ledger.award(ctx, key, openID, points); err != nil {
		return err
	}
	if then != nil {
		if err := then(); err != nil {
			return err
		}
	}
	if m.before != nil {
		return m.before(ctx, key, run)
	}
	return nil
}

func (m *mall) OnPayment(ctx context.Context, e *bizcircle.PaymentEvent) error {
	points := e.Amount / 100
	return m.run(ctx, bizcircle.EventPayment+":"+e.TransactionID, e.OpenID, points, func() error {
		if m.syncs == nil {
			return nil
		}
		tx, _ := callbackTx(ctx)
		_, err := m.syncs.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(e, points, time.Now()))
		return err
	})
}

func (m *mall) OnRefund(ctx context.Context, e *bizcircle.RefundEvent) error {
	return m.run(ctx, bizcircle.EventRefund+":"+e.RefundID, e.OpenID, -e.RefundAmount/100, nil)
}

// runs returns how many times the callback of key ran.
func (m *mall) runCount(key string) int32 {
	c, ok := m.runs.Load(key)
	if !ok {
		return 0
	}
	return c.(*atomic.Int32).Load()
}

func paymentKey(e bizcircle.PaymentEvent) string {
	return bizcircle.EventPayment + ":" + e.TransactionID
}

// env is one test's world: WeChat Pay, a database schema with River's
// tables and a ledger, and the mall's callbacks.
type env struct {
	t        *testing.T
	platform *bizcircletest.Platform
	pool     *pgxpool.Pool
	schema   string
	mall     *mall
	outcomes *outcomes
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := newPool(t, "", 40)
	schema := newSchema(t, pool)
	return &env{
		t:        t,
		platform: bizcircletest.NewPlatform(),
		pool:     pool,
		schema:   schema,
		mall:     &mall{ledger: newLedger(t, pool, schema)},
		outcomes: &outcomes{},
	}
}

// immediately retries failed jobs at once, so tests need not wait.
type immediately struct{}

func (immediately) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// testRiver makes River quick to start, stop and notice new jobs.
func testRiver(c *river.Config) {
	c.TestOnly = true
	c.FetchPollInterval = 20 * time.Millisecond
}

// newQueue returns a Queue on the env's schema and pool (pool when not
// nil), with the mall's callbacks, closed when the test ends. Later opts win.
func (e *env) newQueue(pool *pgxpool.Pool, opts ...queue.Option) *queue.Queue {
	e.t.Helper()
	if pool == nil {
		pool = e.pool
	}
	all := append([]queue.Option{
		queue.WithSchema(e.schema),
		queue.WithLogger(quiet),
		queue.WithRetryPolicy(immediately{}),
		queue.WithRiverConfig(testRiver),
		queue.WithBizcircle(bizcircle.WithObserver(e.outcomes.observe)),
	}, opts...)
	q, err := queue.New(pool, e.platform.APIv3Key, e.platform.Verifier(), e.mall, all...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := q.Close(); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	})
	return q
}

// newOutbox returns an Outbox on the env's schema and pool, closed when the
// test ends. Later opts win.
func (e *env) newOutbox(opts ...queue.Option) *queue.Outbox {
	e.t.Helper()
	all := append([]queue.Option{
		queue.WithSchema(e.schema),
		queue.WithLogger(quiet),
		queue.WithRetryPolicy(immediately{}),
		queue.WithRiverConfig(testRiver),
	}, opts...)
	ob, err := queue.NewOutbox(e.pool, e.platform.APIv3Key, all...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := ob.Close(); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	})
	return ob
}

// start starts the workers of q, a Queue or an Outbox.
func (e *env) start(q interface{ Start(context.Context) error }) {
	e.t.Helper()
	if err := q.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// deliver sends m to h once and returns the status.
func deliver(h http.Handler, m *bizcircletest.Message) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, m.Request("/wechat/bizcircle"))
	io.Copy(io.Discard, rec.Body)
	return rec.Code
}

// jobs returns the jobs of kind in the env's schema, whatever their state.
func (e *env) jobs(kind string) []*rivertype.JobRow {
	e.t.Helper()
	rc, err := river.NewClient(riverpgxv5.New(e.pool), &river.Config{Schema: e.schema, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := rc.JobList(context.Background(), river.NewJobListParams().Kinds(kind).First(10000))
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Jobs
}

// jobByKey returns the notification job of event key.
func (e *env) jobByKey(key string) *rivertype.JobRow {
	e.t.Helper()
	for _, j := range e.jobs(queue.KindNotification) {
		var a queue.NotificationArgs
		if json.Unmarshal(j.EncodedArgs, &a) == nil && a.Key == key {
			return j
		}
	}
	e.t.Fatalf("no job for %s", key)
	return nil
}

// deleteJob deletes job id, as River's cleaner does once a job outlives
// its retention.
func (e *env) deleteJob(id int64) {
	e.t.Helper()
	rc, err := river.NewClient(riverpgxv5.New(e.pool), &river.Config{Schema: e.schema, Logger: quiet})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := rc.JobDelete(context.Background(), id); err != nil {
		e.t.Fatalf("deleting job %d: %v", id, err)
	}
}

// onlyJob returns the one job of kind, failing unless there is exactly one.
func (e *env) onlyJob(kind string) *rivertype.JobRow {
	e.t.Helper()
	jobs := e.jobs(kind)
	if len(jobs) != 1 {
		e.t.Fatalf("%d %s jobs, want 1", len(jobs), kind)
	}
	return jobs[0]
}

// riverOf is a Queue or an Outbox: what has a River client.
type riverOf interface {
	River() *river.Client[pgx.Tx]
}

// waitState polls until job id is in state, failing after a generous
// deadline; it returns the job.
func (e *env) waitState(q riverOf, id int64, state rivertype.JobState) *rivertype.JobRow {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		row, err := q.River().JobGet(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if row.State == state {
			return row
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %d is %s after 30s (attempt %d, errors %v), want %s", id, row.State, row.Attempt, row.Errors, state)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// outcomes counts the outcomes reported to the observer.
type outcomes struct {
	mu     sync.Mutex
	counts map[bizcircle.Outcome]int
}

func (o *outcomes) observe(obs bizcircle.Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[bizcircle.Outcome]int{}
	}
	o.counts[obs.Outcome]++
}

func (o *outcomes) count(out bizcircle.Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[out]
}

// newAPI starts a fake WeChat Pay API for the env's platform, closed when
// the test ends, and returns it with a points client that calls it once per
// sync (no retries of its own: River retries).
func (e *env) newAPI() (*bizcircletest.APIServer, *client.Client) {
	e.t.Helper()
	api := bizcircletest.NewAPIServer(e.platform, bizcircletest.NewMerchant())
	e.t.Cleanup(api.Close)
	c, err := client.New(api.NewClient())
	if err != nil {
		e.t.Fatal(err)
	}
	return api, c
}

// syncCalls returns the points syncs the API received, by status.
func syncCalls(api *bizcircletest.APIServer) map[int]int {
	calls := map[int]int{}
	for _, c := range api.CallsTo(bizcircletest.PathPointsNotify) {
		calls[c.Status]++
	}
	return calls
}

// breakLedger makes every callback fail with "ledger offline" until the
// returned fix is called.
func (e *env) breakLedger() (fix func()) {
	var broken atomic.Bool
	broken.Store(true)
	e.mall.before = func(context.Context, string, int32) error {
		if broken.Load() {
			return errors.New("ledger offline")
		}
		return nil
	}
	return func() { broken.Store(false) }
}

// lazyPool returns a pool of a server that does not exist, closed when the
// test ends: pgxpool connects lazily, so tests that reach no server use it.
func lazyPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// lazyQueue returns a Queue on a lazyPool, closed when the test ends.
func lazyQueue(t testing.TB, opts ...queue.Option) *queue.Queue {
	t.Helper()
	wechat := bizcircletest.NewPlatform()
	q, err := queue.New(lazyPool(t), wechat.APIv3Key, wechat.Verifier(), &mall{}, append([]queue.Option{queue.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}
