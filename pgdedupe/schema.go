package pgdedupe

import (
	"context"
	"fmt"
)

// migrateLock is the advisory lock key that serializes Migrate across
// replicas: concurrent CREATE TABLE IF NOT EXISTS can otherwise fail.
const migrateLock = 0x62697a636972 // "bizcir"

// Schema returns the SQL that creates the Deduper's table and its expiry
// index if they do not exist, for migration tools; [Deduper.Migrate] runs it.
// With the default table it reads:
//
//	CREATE TABLE IF NOT EXISTS "bizcircle_dedupe" (
//		key        bytea       PRIMARY KEY, -- SHA-256 of the event key
//		expires_at timestamptz NOT NULL     -- completed; absent after this
//	);
//	CREATE INDEX IF NOT EXISTS "bizcircle_dedupe_expires_at_idx"
//		ON "bizcircle_dedupe" (expires_at);
//
// Keys are stored as their SHA-256, so any key fits the index. The table must
// stay logged (not UNLOGGED): the dedupe row is as durable as the callback's
// writes only if both are in the write-ahead log.
func (d *Deduper) Schema() string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
	key        bytea       PRIMARY KEY, -- SHA-256 of the event key
	expires_at timestamptz NOT NULL     -- completed; absent after this
);
CREATE INDEX IF NOT EXISTS %s
	ON %[1]s (expires_at);
`, d.table, d.index)
}

// Migrate creates the Deduper's table and index if they do not exist (see
// [Deduper.Schema]). It is safe to call on every start, from several replicas
// at once: an advisory lock runs one Migrate at a time. It does not create a
// schema named by [WithTable].
func (d *Deduper) Migrate(ctx context.Context) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgdedupe: migrate: %w", err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("pgdedupe: migrate: %w", err)
	}
	// Without arguments Exec uses the simple protocol, which runs several
	// statements.
	if _, err := tx.Exec(ctx, d.Schema()); err != nil {
		return fmt.Errorf("pgdedupe: migrate: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgdedupe: migrate: %w", err)
	}
	return nil
}
