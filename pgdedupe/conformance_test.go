package pgdedupe_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/dedupetest"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestConformance runs the shared Deduper suite. Each New is a replica: its
// own pool on the namespace's table.
func TestConformance(t *testing.T) {
	url := pgURL(t)
	for _, tc := range []struct {
		name string
		opts []pgdedupe.Option
	}{
		{"duplicates wait for the holder", nil},
		{"duplicates get ErrInFlight at once", []pgdedupe.Option{pgdedupe.WithInFlightWait(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dedupetest.Run(t, dedupetest.Harness{
				New: func(t *testing.T, cfg dedupetest.Config) bizcircle.Deduper {
					pool, err := pgxpool.New(context.Background(), url)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(pool.Close)
					t.Cleanup(func() { dropTable(t, pool, cfg.Namespace) })
					return newDeduper(t, pool, cfg.Namespace, append(tc.opts, pgdedupe.WithTTL(cfg.TTL))...)
				},
				Shared: true,
				Crash:  crash,
			})
		})
	}
}

// crash leaves key claimed by a holder that hangs: its callback never touches
// the transaction again. A transaction has no lease of its own; what ends a
// hung holder's claim is PostgreSQL's idle_in_transaction_session_timeout,
// set here to cfg.Lease, which terminates the session and rolls back. (A
// holder whose process dies releases the key sooner: the server sees its
// connection close, as TestLedgerExactlyOnce shows.)
func crash(t *testing.T, cfg dedupetest.Config, d bizcircle.Deduper, key string) {
	t.Helper()
	claimed, hang := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := d.Do(context.Background(), key, func(ctx context.Context) error {
			tx, _ := pgdedupe.Tx(ctx)
			_, err := tx.Exec(ctx, `SELECT set_config('idle_in_transaction_session_timeout', $1, true)`,
				fmt.Sprintf("%dms", cfg.Lease.Milliseconds()))
			close(claimed)
			if err != nil {
				return err
			}
			<-hang
			return nil
		})
		done <- err
	}()
	select {
	case <-claimed:
	case err := <-done:
		t.Fatalf("the crashing holder's Do returned %v without running fn", err)
	}
	t.Cleanup(func() {
		close(hang)
		// The server ended the session: the holder cannot commit.
		if err := <-done; err == nil {
			t.Error("the hung holder's Do committed after its session timed out")
		}
	})
}
