package pgdedupe_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgURL returns the test server's URL. Without one the test skips, or fails
// under CI, which always provides a server.
func pgURL(t *testing.T) string {
	t.Helper()
	return testenv.Server(t, "BIZCIRCLE_PG_URL",
		"pgdedupe tests need PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
}

// unique returns prefix and a random lower-case suffix: a fresh identifier.
func unique(prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text()[:12])
}

// newPool connects a pool to the test server, tagged with app as its
// application_name so a test can find its own sessions in pg_stat_activity.
// The pool closes when the test ends.
func newPool(t *testing.T, app string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	return newTracedPool(t, app, maxConns, nil)
}

// newTracedPool is newPool with tr, if not nil, tracing the pool; several
// pools may share one tracer.
func newTracedPool(t *testing.T, app string, maxConns int32, tr *tracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	if tr != nil {
		cfg.ConnConfig.Tracer = tr
	}
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

// newTable returns a fresh dedupe table name, dropped when the test ends.
func newTable(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	name := unique("dedupe")
	t.Cleanup(func() { dropTable(t, pool, name) })
	return name
}

func dropTable(t *testing.T, pool *pgxpool.Pool, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Errorf("drop table %s: %v", name, err)
	}
}

// newDeduper returns a migrated Deduper on table, closed when the test ends.
// The background cleanup is off unless opts turn it on.
func newDeduper(t *testing.T, pool *pgxpool.Pool, table string, opts ...pgdedupe.Option) *pgdedupe.Deduper {
	t.Helper()
	opts = append([]pgdedupe.Option{pgdedupe.WithTable(table), pgdedupe.WithCleanupInterval(0)}, opts...)
	d, err := pgdedupe.New(pool, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := d.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// count returns the number of rows in table.
func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A ledger is a points ledger table without a unique constraint, so a
// callback that ran twice shows as two rows.
type ledger struct {
	pool *pgxpool.Pool
	name string
}

func newLedger(t *testing.T, pool *pgxpool.Pool) ledger {
	t.Helper()
	l := ledger{pool, unique("ledger")}
	_, err := pool.Exec(context.Background(), `CREATE TABLE `+l.ident()+` (
		id             bigserial PRIMARY KEY,
		transaction_id text   NOT NULL,
		points         bigint NOT NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropTable(t, pool, l.name) })
	return l
}

func (l ledger) ident() string { return pgx.Identifier{l.name}.Sanitize() }

// award inserts a ledger row in the callback's transaction.
func (l ledger) award(ctx context.Context, transactionID string, points int64) error {
	tx, ok := pgdedupe.Tx(ctx)
	if !ok {
		return fmt.Errorf("no transaction in the callback's context")
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+l.ident()+` (transaction_id, points) VALUES ($1, $2)`, transactionID, points)
	return err
}

// rows returns how many ledger rows transactionID has.
func (l ledger) rows(t *testing.T, transactionID string) int {
	t.Helper()
	var n int
	err := l.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM `+l.ident()+` WHERE transaction_id = $1`, transactionID).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newClock returns a settable clock for WithClock.
func newClock() *bizcircletest.Clock {
	return bizcircletest.NewClock(time.Date(2026, 5, 20, 13, 29, 35, 0, time.UTC))
}

// A tracer records, per caller, what a pool did for it: connections
// acquired, statements sent, and claims refused with lock_not_available (the
// key was in flight). Tag a caller's context with asCaller; untagged calls
// are recorded under "".
type tracer struct {
	mu       sync.Mutex
	acquires map[string]int
	busy     map[string]int
	sql      map[string][]string
}

type callerKey struct{}

// asCaller tags ctx as caller's for a tracer.
func asCaller(ctx context.Context, caller string) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

func callerOf(ctx context.Context) string {
	c, _ := ctx.Value(callerKey{}).(string)
	return c
}

func newTracer() *tracer {
	return &tracer{acquires: map[string]int{}, busy: map[string]int{}, sql: map[string][]string{}}
}

func (tr *tracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	tr.mu.Lock()
	tr.acquires[callerOf(ctx)]++
	tr.mu.Unlock()
	return ctx
}

func (tr *tracer) TraceAcquireEnd(context.Context, *pgxpool.Pool, pgxpool.TraceAcquireEndData) {}

func (tr *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	tr.record(ctx, data.SQL)
	return ctx
}

func (tr *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	tr.recordErr(ctx, data.Err)
}

func (tr *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	tr.record(ctx, "batch")
	return ctx
}

func (tr *tracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	tr.recordErr(ctx, data.Err)
}

func (tr *tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (tr *tracer) record(ctx context.Context, sql string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	c := callerOf(ctx)
	tr.sql[c] = append(tr.sql[c], strings.Join(strings.Fields(sql), " "))
}

func (tr *tracer) recordErr(ctx context.Context, err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		tr.mu.Lock()
		tr.busy[callerOf(ctx)]++
		tr.mu.Unlock()
	}
}

// statements returns the statements sent for caller, a batch as "batch".
func (tr *tracer) statements(caller string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.sql[caller])
}

// callers returns how many callers whose tag begins with prefix meet cond,
// given their counts.
func (tr *tracer) callers(prefix string, cond func(acquires, busy int) bool) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for c, a := range tr.acquires {
		if strings.HasPrefix(c, prefix) && cond(a, tr.busy[c]) {
			n++
		}
	}
	return n
}

// waitFor polls until cond holds, or fails after a generous deadline.
func waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within 20s: %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond): // polling interval
		}
	}
	return nil
}
