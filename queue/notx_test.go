package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5"
)

// TestTxOutsideWorker: outside a queue worker, Tx says ok false and gives
// a transaction whose calls fail with ErrNoTx, not a nil that panics; and
// SyncPointsTx given no transaction, or one from outside a callback,
// enqueues nothing and says why with a named error.
func TestTxOutsideWorker(t *testing.T) {
	ctx := context.Background()
	tx, ok := queue.Tx(ctx)
	if ok || tx == nil {
		t.Fatalf("Tx(context.Background()) = %v, %v; want a non-nil tx and false", tx, ok)
	}
	var n int
	for name, err := range map[string]error{
		"Exec":     func() error { _, err := tx.Exec(ctx, "SELECT 1"); return err }(),
		"QueryRow": tx.QueryRow(ctx, "SELECT 1").Scan(&n),
		"Begin":    func() error { _, err := tx.Begin(ctx); return err }(),
		"Commit":   tx.Commit(ctx),
	} {
		if !errors.Is(err, queue.ErrNoTx) {
			t.Errorf("%s = %v, want ErrNoTx", name, err)
		}
	}

	q := lazyQueue(t)
	p := bizcircletest.SamplePayment()
	r := client.NewSyncPointsRequest(&p, 2, time.Now())
	pgTx, _ := pgdedupe.Tx(ctx)
	for _, tt := range []struct {
		name string
		tx   pgx.Tx
		want error
	}{
		{"a nil transaction", nil, queue.ErrNoTx},
		{"queue.Tx outside a worker", tx, queue.ErrNoTx},
		{"pgdedupe.Tx outside a callback", pgTx, pgdedupe.ErrNoTx},
	} {
		t.Run(tt.name, func(t *testing.T) {
			enqueued, err := q.SyncPointsTx(ctx, tt.tx, r)
			if enqueued || !errors.Is(err, tt.want) {
				t.Errorf("SyncPointsTx = %v, %v; want false, %v", enqueued, err, tt.want)
			}
		})
	}
}
