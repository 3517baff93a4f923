package pgdedupe_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestLedgerExactlyOnce is the point of the package: a delivery whose
// callback inserts a ledger row and then does not commit leaves no ledger
// row and no dedupe row, and the retry inserts exactly one.
func TestLedgerExactlyOnce(t *testing.T) {
	errLedger := errors.New("points service down")
	tests := []struct {
		name string
		// fail runs after the ledger insert, in the first delivery's
		// callback; admin is a pool outside the transaction.
		fail    func(ctx context.Context, admin *pgxpool.Pool) error
		check   func(t *testing.T, ran bool, err error, panicked any)
		wantRan bool
	}{
		{
			name: "the callback fails",
			fail: func(context.Context, *pgxpool.Pool) error { return errLedger },
			check: func(t *testing.T, ran bool, err error, _ any) {
				if !ran || !errors.Is(err, errLedger) {
					t.Errorf("Do = (%v, %v), want (true, %v)", ran, err, errLedger)
				}
			},
		},
		{
			name: "the callback panics",
			fail: func(context.Context, *pgxpool.Pool) error { panic("points service bug") },
			check: func(t *testing.T, _ bool, _ error, panicked any) {
				if panicked != "points service bug" {
					t.Errorf("Do's panic = %v, want the callback's", panicked)
				}
			},
		},
		{
			name: "the connection dies before the commit",
			fail: func(ctx context.Context, admin *pgxpool.Pool) error {
				tx, _ := pgdedupe.Tx(ctx)
				return terminate(ctx, admin, tx)
			},
			check: func(t *testing.T, ran bool, err error, _ any) {
				if !ran || err == nil {
					t.Errorf("Do = (%v, %v), want (true, an error)", ran, err)
				}
			},
		},
		{
			name: "the connection dies and the callback's next statement fails",
			fail: func(ctx context.Context, admin *pgxpool.Pool) error {
				tx, _ := pgdedupe.Tx(ctx)
				if err := terminate(ctx, admin, tx); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "SELECT 1")
				return err
			},
			check: func(t *testing.T, ran bool, err error, _ any) {
				if !ran || err == nil {
					t.Errorf("Do = (%v, %v), want (true, an error)", ran, err)
				}
			},
		},
		{
			name: "the callback ignores a failed statement",
			fail: func(ctx context.Context, _ *pgxpool.Pool) error {
				tx, _ := pgdedupe.Tx(ctx)
				_, _ = tx.Exec(ctx, "SELECT 1/0") // aborts the transaction
				return nil
			},
			check: func(t *testing.T, ran bool, err error, _ any) {
				if !ran || err == nil {
					t.Errorf("Do = (%v, %v), want (true, an error)", ran, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newPool(t, unique("ledger"), 0)
			table := newTable(t, pool)
			l := newLedger(t, pool)
			d := newDeduper(t, pool, table)
			ctx := context.Background()
			const txID = "4200000001202605201329"

			ran, err, panicked := doRecover(ctx, d, txID, func(ctx context.Context) error {
				if err := l.award(ctx, txID, 200); err != nil {
					return fmt.Errorf("award: %w", err)
				}
				return tt.fail(ctx, pool)
			})
			tt.check(t, ran, err, panicked)
			if n := l.rows(t, txID); n != 0 {
				t.Errorf("after the failed delivery: %d ledger rows, want 0", n)
			}
			if n := count(t, pool, table); n != 0 {
				t.Errorf("after the failed delivery: %d dedupe rows, want 0", n)
			}

			for i, want := range []bool{true, false} { // the retry, and one more
				ran, err := d.Do(ctx, txID, func(ctx context.Context) error { return l.award(ctx, txID, 200) })
				if ran != want || err != nil {
					t.Errorf("retry %d: Do = (%v, %v), want (%v, nil)", i+1, ran, err, want)
				}
			}
			if n := l.rows(t, txID); n != 1 {
				t.Errorf("after the retries: %d ledger rows, want 1", n)
			}
			if n := count(t, pool, table); n != 1 {
				t.Errorf("after the retries: %d dedupe rows, want 1", n)
			}
		})
	}
}

// doRecover calls d.Do and returns its panic, if any.
func doRecover(ctx context.Context, d *pgdedupe.Deduper, key string, fn func(context.Context) error) (ran bool, err error, panicked any) {
	defer func() { panicked = recover() }()
	ran, err = d.Do(ctx, key, fn)
	return ran, err, nil
}

// terminate kills tx's server process from admin, as if the process running
// the callback died, and returns once it has exited.
func terminate(ctx context.Context, admin *pgxpool.Pool, tx pgx.Tx) error {
	var pid uint32
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return err
	}
	var ok bool
	// With a timeout, pg_terminate_backend waits for the process to exit.
	if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ok); err != nil || !ok {
		return fmt.Errorf("terminate backend %d: %v, %v", pid, ok, err)
	}
	return nil
}

// TestLedgerConcurrentDuplicates delivers one event 100 times at once
// through two replicas (two pools, two Dedupers on one table).
func TestLedgerConcurrentDuplicates(t *testing.T) {
	tests := []struct {
		name string
		tx   pgx.TxOptions
		// inFlightOK: a duplicate may give ErrInFlight; otherwise every
		// duplicate waits for the holder and skips.
		inFlightOK bool
	}{
		{name: "read committed", tx: pgx.TxOptions{IsoLevel: pgx.ReadCommitted}},
		{name: "serializable", tx: pgx.TxOptions{IsoLevel: pgx.Serializable}, inFlightOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := unique("dup")
			tr := newTracer()
			pools := []*pgxpool.Pool{newTracedPool(t, app, 30, tr), newTracedPool(t, app, 30, tr)}
			admin := newPool(t, unique("admin"), 2)
			table := newTable(t, admin)
			l := newLedger(t, admin)
			var replicas []*pgdedupe.Deduper
			for _, p := range pools {
				replicas = append(replicas, newDeduper(t, p, table,
					pgdedupe.WithTxOptions(tt.tx), pgdedupe.WithInFlightWait(30*time.Second)))
			}
			const (
				txID       = "4200000002202605201329"
				deliveries = 100
				queued     = 20 // duplicates that find the key in flight before the holder commits
			)
			var runs atomic.Int64
			fn := func(ctx context.Context) error {
				runs.Add(1)
				if err := l.award(ctx, txID, 200); err != nil {
					return err
				}
				// Hold the claim until duplicates on both replicas wait
				// for it.
				return waitFor(ctx, "duplicates find the key in flight", func() bool {
					return tr.callers("", func(_, busy int) bool { return busy > 0 }) >= queued
				})
			}

			type result struct {
				ran bool
				err error
			}
			results := make([]result, deliveries)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range deliveries {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(asCaller(context.Background(), fmt.Sprint(i)), time.Minute)
					defer cancel()
					ran, err := replicas[i%2].Do(ctx, txID, fn)
					results[i] = result{ran, err}
				})
			}
			close(start)
			wg.Wait()

			ran := 0
			for i, r := range results {
				switch {
				case r.ran && r.err == nil:
					ran++
				case !r.ran && r.err == nil:
				case !r.ran && tt.inFlightOK && errors.Is(r.err, bizcircle.ErrInFlight):
				default:
					t.Errorf("delivery %d: Do = (%v, %v)", i, r.ran, r.err)
				}
			}
			if ran != 1 || runs.Load() != 1 {
				t.Errorf("%d deliveries ran, fn ran %d times; want 1 and 1", ran, runs.Load())
			}
			if n := l.rows(t, txID); n != 1 {
				t.Errorf("%d ledger rows, want 1", n)
			}
			if n := count(t, admin, table); n != 1 {
				t.Errorf("%d dedupe rows, want 1", n)
			}
		})
	}
}

// TestLedgerCommitsAfterTheCallerLeaves: WeChat Pay hangs up after 5
// seconds, cancelling the request's context. A callback that finished its
// work must still commit, or every retry would redo its external effects.
func TestLedgerCommitsAfterTheCallerLeaves(t *testing.T) {
	pool := newPool(t, unique("leave"), 0)
	d := newDeduper(t, pool, newTable(t, pool))
	l := newLedger(t, pool)
	ctx, cancel := context.WithCancel(context.Background())
	ran, err := d.Do(ctx, "4200000777", func(ctx context.Context) error {
		if err := l.award(ctx, "4200000777", 5); err != nil {
			return err
		}
		cancel() // the caller gives up after the callback's last write
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("Do = (%v, %v), want (true, nil): the finished callback must commit", ran, err)
	}
	if n := l.rows(t, "4200000777"); n != 1 {
		t.Fatalf("%d ledger rows, want 1", n)
	}
	if ran, err := d.Do(context.Background(), "4200000777", func(context.Context) error { return nil }); ran || err != nil {
		t.Fatalf("retry: Do = (%v, %v), want (false, nil)", ran, err)
	}
}
