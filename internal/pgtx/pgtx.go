// Package pgtx holds what pgdedupe and queue both do with transactions.
package pgtx

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollbackTimeout bounds a rollback when ctx has ended.
const rollbackTimeout = 5 * time.Second

// Rollback rolls tx back, even when ctx has ended.
func Rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	// A failed rollback closes the connection, which rolls back on the
	// server: nothing is left to do with its error.
	_ = tx.Rollback(ctx)
}
