package pgdedupe_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/internal/testenv"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/jackc/pgx/v5"
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
	cfg, err := pgxpool.ParseConfig(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
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

// waitForLockWaiters polls until at least n sessions named app wait on a
// lock, or fails after a generous deadline.
func waitForLockWaiters(ctx context.Context, pool *pgxpool.Pool, app string, n int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&waiting)
		if err != nil {
			return err
		}
		if waiting >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sessions of %s wait on a lock after 20s, want %d", waiting, app, n)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// newClock returns a settable clock for WithClock.
func newClock() *bizcircletest.Clock {
	return bizcircletest.NewClock(time.Date(2026, 5, 20, 13, 29, 35, 0, time.UTC))
}
