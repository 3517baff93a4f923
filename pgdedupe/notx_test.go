package pgdedupe_test

import (
	"context"
	"errors"
	"testing"

	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/jackc/pgx/v5"
)

// TestTxOutsideCallback: outside a pgdedupe callback, Tx says ok false and
// gives a transaction whose every call fails with ErrNoTx, rather than a nil
// that panics on first use.
func TestTxOutsideCallback(t *testing.T) {
	ctx := context.Background()
	tx, ok := pgdedupe.Tx(ctx)
	if ok || tx == nil {
		t.Fatalf("Tx(context.Background()) = %v, %v; want a non-nil tx and false", tx, ok)
	}
	if tx.Conn() != nil {
		t.Errorf("Conn() = %v, want nil", tx.Conn())
	}
	for _, c := range txCalls(ctx, tx) {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, pgdedupe.ErrNoTx) {
				t.Errorf("%s = %v, want ErrNoTx", c.name, err)
			}
		})
	}
}

// txCalls is each call a callback makes on a pgx.Tx, returning its error.
func txCalls(ctx context.Context, tx pgx.Tx) []struct {
	name string
	call func() error
} {
	return []struct {
		name string
		call func() error
	}{
		{"Exec", func() error { _, err := tx.Exec(ctx, "SELECT 1"); return err }},
		{"Query", func() error { _, err := tx.Query(ctx, "SELECT 1"); return err }},
		{"Query's rows", func() error {
			rows, _ := tx.Query(ctx, "SELECT 1") // pgx.CollectRows style: the error comes from rows
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}},
		{"QueryRow", func() error { var n int; return tx.QueryRow(ctx, "SELECT 1").Scan(&n) }},
		{"SendBatch", func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			br := tx.SendBatch(ctx, b)
			_, err := br.Exec()
			if cerr := br.Close(); !errors.Is(cerr, pgdedupe.ErrNoTx) {
				return cerr
			}
			return err
		}},
		{"CopyFrom", func() error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"a"}, pgx.CopyFromRows(nil))
			return err
		}},
		{"Prepare", func() error { _, err := tx.Prepare(ctx, "s", "SELECT 1"); return err }},
		{"Begin", func() error { _, err := tx.Begin(ctx); return err }},
		{"Commit", func() error { return tx.Commit(ctx) }},
		{"Rollback", func() error { return tx.Rollback(ctx) }},
	}
}
