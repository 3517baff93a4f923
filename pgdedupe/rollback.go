package pgdedupe

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// rollbackTimeout bounds a rollback when ctx has ended.
const rollbackTimeout = 5 * time.Second

// rollback rolls tx back, even when ctx has ended, so the connection goes
// back to the pool instead of being closed.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	// A failed rollback closes the connection, which rolls back on the
	// server: nothing is left to do with its error.
	_ = tx.Rollback(ctx)
}
