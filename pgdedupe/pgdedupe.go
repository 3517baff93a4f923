// Package pgdedupe is a PostgreSQL [bizcircle.Deduper] that runs each
// callback inside the transaction that claims its event.
//
// Do begins a transaction, inserts the event's row into a small table, runs
// the callback with that transaction in its context, marks the row completed
// and commits. The callback writes its own records (a points ledger, say)
// through [Tx], so the records and the dedupe row commit together or not at
// all: a callback that fails, panics or loses its connection leaves neither
// behind, and WeChat Pay's retry runs it again; a callback that committed is
// never run again. This is exactly-once effect, not just at-least-once.
//
// A concurrent duplicate, on another connection or another replica, waits on
// the holder's row lock for up to the in-flight wait (and never past its
// context), then sees the holder's outcome, or gives [bizcircle.ErrInFlight].
// A holder whose process dies releases the key as soon as PostgreSQL sees its
// connection close; one that hangs, or whose host vanishes, holds it until
// the server ends the session: set idle_in_transaction_session_timeout (for
// the role, or with set_config in the callback) to bound that.
//
// Create the table with [Deduper.Migrate] (or run [Deduper.Schema] with a
// migration tool). Completed rows are kept for the TTL and then count as
// absent; [Deduper.DeleteExpired] removes them in small batches that skip
// rows in use, and by default a background loop calls it every hour until
// [Deduper.Close].
package pgdedupe

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrTxOwned is returned by Commit and Rollback on the transaction from [Tx]:
// the [Deduper] ends that transaction. Return nil from the callback to commit
// it, an error to roll it back.
var ErrTxOwned = errors.New("pgdedupe: the transaction is committed or rolled back by the Deduper")

// Deduper is a [bizcircle.Deduper] on a PostgreSQL table. Its zero value is
// not usable: create one with [New]. A Deduper is safe for concurrent use, and
// several Dedupers on one table (replicas) dedupe together.
type Deduper struct {
	pool      *pgxpool.Pool
	table     string // sanitized, possibly schema-qualified
	index     string // sanitized, unqualified
	ttl       time.Duration
	wait      time.Duration // the in-flight wait
	now       func() time.Time
	txOptions pgx.TxOptions
	cleanup   cleanupConfig
	sql       statements
	loop      *cleanupLoop // nil without a background cleanup
}

type statements struct {
	insert, takeover, complete, deleteExpired string
}

// New returns a Deduper on pool's table [DefaultTable]. It does not create the
// table: call [Deduper.Migrate] once. Unless [WithCleanupInterval] is 0, New
// starts a goroutine that deletes expired rows; stop it with [Deduper.Close].
// New returns an error for a nil pool or an invalid option.
func New(pool *pgxpool.Pool, opts ...Option) (*Deduper, error) {
	if pool == nil {
		return nil, errors.New("pgdedupe: nil pool")
	}
	o := options{
		table:           DefaultTable,
		ttl:             bizcircle.DefaultTTL,
		wait:            bizcircle.DefaultInFlightWait,
		now:             time.Now,
		cleanupInterval: DefaultCleanupInterval,
		cleanupBatch:    DefaultCleanupBatch,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	table, index := o.identifiers()
	d := &Deduper{
		pool:      pool,
		table:     table,
		index:     index,
		ttl:       o.ttl,
		wait:      o.wait,
		now:       o.now,
		txOptions: o.txOptions,
		cleanup:   cleanupConfig{batch: o.cleanupBatch, onError: o.onCleanupError},
		sql:       newStatements(table),
	}
	if o.cleanupInterval > 0 {
		d.loop = startCleanup(d, o.cleanupInterval)
	}
	return d, nil
}

func newStatements(table string) statements {
	return statements{
		insert: `INSERT INTO ` + table + ` (key, expires_at) VALUES ($1, $2)
			ON CONFLICT (key) DO NOTHING RETURNING true`,
		// Takes over an expired row, and reports whether an unexpired one
		// exists in this statement's snapshot.
		takeover: `WITH taken AS (
				UPDATE ` + table + ` SET expires_at = $2
				WHERE key = $1 AND expires_at <= $3 RETURNING true)
			SELECT EXISTS (SELECT FROM taken),
				EXISTS (SELECT FROM ` + table + ` WHERE key = $1 AND expires_at > $3)`,
		complete: `UPDATE ` + table + ` SET expires_at = $2 WHERE key = $1`,
		deleteExpired: `DELETE FROM ` + table + ` WHERE key IN (
				SELECT key FROM ` + table + ` WHERE expires_at <= $1
				LIMIT $2 FOR UPDATE SKIP LOCKED)`,
	}
}

// lockTimeout returns the claim's lock_timeout setting: the in-flight wait,
// shortened to end just before ctx's deadline, so that PostgreSQL ends the
// wait and the connection stays usable (pgx closes a connection whose query
// outlives its context). 0 would disable lock_timeout, so waits under a
// millisecond become 1ms.
func (d *Deduper) lockTimeout(ctx context.Context) string {
	wait := d.wait
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(deadline)*9/10)
	}
	const maxMillis = 1<<31 - 1 // lock_timeout is an int of milliseconds
	return fmt.Sprintf("%dms", min(max(wait.Milliseconds(), 1), maxMillis))
}

type txKey struct{}

// Tx returns the transaction of the [Deduper.Do] call running the callback
// that got ctx. Write the callback's records with it so they commit together
// with the dedupe row; do not use it after the callback returns, nor from
// several goroutines at once. Its Commit and Rollback return [ErrTxOwned];
// Begin starts a savepoint as usual. ok is false when ctx does not come from
// a pgdedupe callback.
func Tx(ctx context.Context) (tx pgx.Tx, ok bool) {
	tx, ok = ctx.Value(txKey{}).(pgx.Tx)
	return tx, ok
}

// callbackTx is the transaction the callback gets: the Deduper ends it.
type callbackTx struct{ pgx.Tx }

func (callbackTx) Commit(context.Context) error   { return ErrTxOwned }
func (callbackTx) Rollback(context.Context) error { return ErrTxOwned }

// Do implements [bizcircle.Deduper]. It runs fn inside a transaction that
// holds key's row, unless key completed less than the TTL ago (ran is false,
// err nil). fn reaches the transaction with [Tx]. When fn returns nil, Do
// marks the row completed for the TTL and commits; fn's error, a panic, or a
// failed commit rolls back fn's writes and the row alike, so a retry runs fn
// again. fn's error is returned as is; a panic goes on after the rollback; a
// failed commit gives ran true and the error. Once fn has returned nil, the
// mark and the commit no longer depend on ctx (they are bounded by 10
// seconds of their own): a callback that finished commits even if the caller
// hung up, rather than running again on the retry.
//
// While another transaction holds key, Do waits for its outcome for up to the
// in-flight wait and until shortly before ctx's deadline, then gives an error
// matching [bizcircle.ErrInFlight]; ctx cancelled while waiting gives one
// matching both ErrInFlight and ctx.Err(). Each Do uses
// one pooled connection for its whole run: fn should not take another from
// the same pool, which can starve the pool under load.
func (d *Deduper) Do(ctx context.Context, key string, fn func(ctx context.Context) error) (ran bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	tx, err := d.pool.BeginTx(ctx, d.txOptions)
	if err != nil {
		return false, fmt.Errorf("pgdedupe: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed { // also when fn panics: the panic goes on after this
			rollback(ctx, tx)
		}
	}()
	sum := sha256.Sum256([]byte(key))
	id := sum[:]
	claimed, err := d.claim(ctx, tx, id)
	if err != nil || !claimed {
		return false, err
	}
	if err := fn(context.WithValue(ctx, txKey{}, pgx.Tx(callbackTx{tx}))); err != nil {
		return true, err
	}
	// fn's work is done: finish it even if the caller has gone (WeChat Pay
	// hangs up after 5 seconds), so it commits instead of running again.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	tag, err := tx.Exec(fctx, d.sql.complete, id, d.now().Add(d.ttl))
	if err != nil {
		return true, fmt.Errorf("pgdedupe: mark completed: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return true, errors.New("pgdedupe: mark completed: the callback deleted the dedupe row")
	}
	if err := tx.Commit(fctx); err != nil {
		return true, fmt.Errorf("pgdedupe: commit: %w", err)
	}
	committed = true
	return true, nil
}

// finishTimeout bounds marking and committing after fn succeeded, which no
// longer depend on the caller's context.
const finishTimeout = 10 * time.Second

// claimAttempts bounds the retries when the row vanishes between statements:
// the cleanup deleted it as expired after the insert found it.
const claimAttempts = 3

// claim reports whether tx now holds id's row: it inserted the row or took
// over an expired one. An unexpired row, completed by another transaction,
// gives false. Only the claim waits under the in-flight wait's lock_timeout;
// the callback runs with the lock_timeout it had before.
func (d *Deduper) claim(ctx context.Context, tx pgx.Tx, id []byte) (bool, error) {
	for range claimAttempts {
		now := d.now()
		expires := now.Add(d.ttl)
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('bizcircle.saved_lock_timeout', current_setting('lock_timeout'), true)`)
		b.Queue(`SELECT set_config('lock_timeout', $1, true)`, d.lockTimeout(ctx))
		b.Queue(d.sql.insert, id, expires)
		b.Queue(d.sql.takeover, id, expires, now)
		b.Queue(`SELECT set_config('lock_timeout', current_setting('bizcircle.saved_lock_timeout'), true)`)
		inserted, taken, live, err := readClaim(tx.SendBatch(ctx, b))
		if err != nil {
			return false, claimError(ctx, err)
		}
		if inserted || taken {
			return true, nil
		}
		if live {
			return false, nil
		}
	}
	return false, fmt.Errorf("%w: pgdedupe: the key's row kept changing", bizcircle.ErrInFlight)
}

func readClaim(br pgx.BatchResults) (inserted, taken, live bool, err error) {
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return false, false, false, err
		}
	}
	if err := br.QueryRow().Scan(&inserted); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, false, false, err
	}
	if err := br.QueryRow().Scan(&taken, &live); err != nil {
		return false, false, false, err
	}
	_, err = br.Exec()
	return inserted, taken, live, err
}

// claimError turns a failed claim into ErrInFlight when it failed waiting
// for another transaction: the lock_timeout expired, ctx ended, or stricter
// isolation levels refused the row another transaction changed.
func claimError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", bizcircle.ErrInFlight, ctx.Err())
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03", // lock_not_available: lock_timeout
			"40001", // serialization_failure
			"40P01": // deadlock_detected
			return fmt.Errorf("%w: %w", bizcircle.ErrInFlight, err)
		}
	}
	return fmt.Errorf("pgdedupe: claim: %w", err)
}

// rollbackTimeout bounds a rollback when ctx has ended.
const rollbackTimeout = 5 * time.Second

func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	// A failed rollback closes the connection, which rolls back on the
	// server: nothing is left to do with its error.
	_ = tx.Rollback(ctx)
}
