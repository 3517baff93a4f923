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
// A duplicate of a completed event is answered by one short lookup. A
// concurrent duplicate, on another connection or another replica, finds the
// key in flight and looks again every 100 ms at most, for up to the in-flight
// wait (and never past its context), without holding a connection in
// between; then it sees the holder's outcome, or gives
// [bizcircle.ErrInFlight]. A holder whose process dies releases the key as
// soon as PostgreSQL sees its connection close; one that hangs, or whose host
// vanishes, holds it until the server ends the session: set
// idle_in_transaction_session_timeout (for the role, or with set_config in
// the callback) to bound that.
//
// Create the table with [Deduper.Migrate] (or run [Deduper.Schema] with a
// migration tool). Completed rows are kept for the TTL and then count as
// absent; [Deduper.DeleteExpired] removes them in small batches that skip
// rows in use, and by default a background loop calls it every hour until
// [Deduper.Close].
//
// # Sizing the pool
//
// A running callback holds one pooled connection from its claim to its
// commit; lookups, and duplicates that find their event in flight, hold one
// for a few milliseconds at a time. So give the pool (pgxpool's MaxConns, or
// pool_max_conns in the URL: by default the number of CPUs, but at least 4)
// as many connections as distinct events may be processed at once, plus a
// margin of a few for lookups, duplicates and the cleanup, plus whatever the
// callbacks take from the same pool themselves. When no connection is free,
// Do waits for one for at most the in-flight wait (at least a second), then
// gives [bizcircle.ErrInFlight], so WeChat Pay retries rather than the
// request hanging until it times out.
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
	lookup, insert, takeover, complete, deleteExpired string
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
		lookup: `SELECT expires_at > $2 FROM ` + table + ` WHERE key = $1`,
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

type txKey struct{}

// Tx returns the transaction of the [Deduper.Do] call running the callback
// that got ctx. Write the callback's records with it so they commit together
// with the dedupe row; do not use it after the callback returns, nor from
// several goroutines at once. Its Commit and Rollback return [ErrTxOwned];
// Begin starts a savepoint as usual.
//
// ok is false when ctx does not come from a pgdedupe callback; tx is then
// not nil but fails every call with [ErrNoTx] (LargeObjects and Conn
// excepted), so code that ignores ok gets an error rather than a panic, and
// writes nothing outside the Deduper's transaction.
func Tx(ctx context.Context) (tx pgx.Tx, ok bool) {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx, true
	}
	return FailingTx(ErrNoTx), false
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
// Do first looks key up with one short statement, which answers a
// duplicate of a completed event. Otherwise it begins the transaction and
// claims the row; if another transaction holds it, Do rolls back, returns
// the connection to the pool and looks again after a pause (10 ms, doubling
// up to 100 ms), until it sees the holder's outcome or the in-flight wait
// ends (shortly before ctx's deadline, if that is earlier): then it gives an
// error matching [bizcircle.ErrInFlight]. ctx cancelled while waiting gives
// one matching both ErrInFlight and ctx.Err(). Waiting for a pooled
// connection is bounded the same way: at most the in-flight wait, or a
// second if the wait is shorter (long enough to dial a connection), then
// ErrInFlight. See the package documentation on sizing the pool.
//
// Each running fn holds one pooled connection for its whole run: fn should
// not take another from the same pool, which can starve the pool under
// load.
func (d *Deduper) Do(ctx context.Context, key string, fn func(ctx context.Context) error) (ran bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	sum := sha256.Sum256([]byte(key))
	id := sum[:]
	w := d.newWait(ctx)
	for {
		conn, err := w.acquire(ctx, d.pool)
		if err != nil {
			return false, err
		}
		tx, err := d.lookupAndClaim(ctx, conn, id)
		if tx != nil {
			return true, d.run(ctx, conn, tx, id, fn)
		}
		conn.Release()
		if !errors.Is(err, errBusy) {
			return false, err // nil: completed
		}
		if err := w.pause(ctx); err != nil {
			return false, err
		}
	}
}

// errBusy reports that another transaction holds the key's row.
var errBusy = errors.New("pgdedupe: the key is held by another transaction")

// lookupAndClaim returns a transaction on conn that holds id's row, or nil
// and why not: nil for a completed key, errBusy for one in flight, another
// error for a failure. A nil transaction leaves conn idle.
func (d *Deduper) lookupAndClaim(ctx context.Context, conn *pgxpool.Conn, id []byte) (pgx.Tx, error) {
	// Committed rows are completed ones; a claim in flight is invisible here.
	var live bool
	err := conn.QueryRow(ctx, d.sql.lookup, id, d.now()).Scan(&live)
	switch {
	case err == nil && live:
		return nil, nil
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return nil, claimError(ctx, "lookup", err)
	}
	tx, err := conn.BeginTx(ctx, d.txOptions)
	if err != nil {
		return nil, claimError(ctx, "begin", err)
	}
	claimed, err := d.claim(ctx, tx, id)
	if !claimed {
		rollback(ctx, tx)
		return nil, err
	}
	return tx, nil
}

// run runs fn in tx, which holds id's row, then commits or rolls back and
// releases conn.
func (d *Deduper) run(ctx context.Context, conn *pgxpool.Conn, tx pgx.Tx, id []byte, fn func(context.Context) error) error {
	defer conn.Release() // after the rollback below: a connection in a transaction is destroyed
	committed := false
	defer func() {
		if !committed { // also when fn panics: the panic goes on after this
			rollback(ctx, tx)
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{}, pgx.Tx(callbackTx{tx}))); err != nil {
		return err
	}
	// fn's work is done: finish it even if the caller has gone (WeChat Pay
	// hangs up after 5 seconds), so it commits instead of running again.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	tag, err := tx.Exec(fctx, d.sql.complete, id, d.now().Add(d.ttl))
	if err != nil {
		return fmt.Errorf("pgdedupe: mark completed: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("pgdedupe: mark completed: the callback deleted the dedupe row")
	}
	if err := tx.Commit(fctx); err != nil {
		return fmt.Errorf("pgdedupe: commit: %w", err)
	}
	committed = true
	return nil
}

// finishTimeout bounds marking and committing after fn succeeded, which no
// longer depend on the caller's context.
const finishTimeout = 10 * time.Second

// How a duplicate waits for a key in flight: it looks again after a pause
// that starts at firstPause and doubles up to maxPause, holding no
// connection in between. The claim itself waits at most claimLockWait for
// the row's lock, so it holds its connection only for a moment.
const (
	firstPause    = 10 * time.Millisecond
	maxPause      = 100 * time.Millisecond
	claimLockWait = "1ms"
	// minConnWait is the shortest wait for a pooled connection, whatever the
	// in-flight wait: long enough to dial one.
	minConnWait = time.Second
)

// A wait is one Do call's budget for waiting: for a key in flight, and for
// a pooled connection.
type wait struct {
	until     time.Time     // the in-flight wait ends
	connUntil time.Time     // the wait for a connection ends
	next      time.Duration // the next pause
}

// newWait starts Do's waits now. The in-flight wait ends shortly before
// ctx's deadline, so that Do answers ErrInFlight itself rather than have a
// statement cut off by the deadline (pgx closes a connection whose query
// outlives its context).
func (d *Deduper) newWait(ctx context.Context) *wait {
	now := time.Now()
	w := &wait{until: now.Add(d.wait), connUntil: now.Add(max(d.wait, minConnWait)), next: firstPause}
	if deadline, ok := ctx.Deadline(); ok {
		if end := now.Add(deadline.Sub(now) * 9 / 10); end.Before(w.until) {
			w.until = end
		}
	}
	return w
}

// acquire takes a connection from pool, waiting for one until the
// connection wait ends (then ErrInFlight) or ctx does.
func (w *wait) acquire(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, error) {
	actx, cancel := context.WithDeadline(ctx, w.connUntil)
	defer cancel()
	conn, err := pool.Acquire(actx)
	switch {
	case err == nil:
		return conn, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: %w", bizcircle.ErrInFlight, ctx.Err())
	case actx.Err() != nil:
		return nil, fmt.Errorf("%w: pgdedupe: no pooled connection was free within the in-flight wait", bizcircle.ErrInFlight)
	}
	return nil, fmt.Errorf("pgdedupe: acquire a connection: %w", err)
}

// pause waits before Do looks at a key in flight again. It returns
// ErrInFlight once the in-flight wait is over, and with ctx's error if ctx
// ends first.
func (w *wait) pause(ctx context.Context) error {
	left := time.Until(w.until)
	if left <= 0 {
		return bizcircle.ErrInFlight
	}
	// The last pause ends with the wait, for one more look.
	t := time.NewTimer(min(w.next, left))
	defer t.Stop()
	w.next = min(2*w.next, maxPause)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", bizcircle.ErrInFlight, ctx.Err())
	}
}

// claimAttempts bounds the retries when the row vanishes between statements:
// the cleanup deleted it as expired after the insert found it.
const claimAttempts = 3

// claim reports whether tx now holds id's row: it inserted the row or took
// over an expired one. An unexpired row, completed by another transaction,
// gives false and nil; one held by another transaction gives errBusy. Only
// the claim waits under claimLockWait's lock_timeout; the callback runs with
// the lock_timeout it had before.
func (d *Deduper) claim(ctx context.Context, tx pgx.Tx, id []byte) (bool, error) {
	for range claimAttempts {
		now := d.now()
		expires := now.Add(d.ttl)
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('bizcircle.saved_lock_timeout', current_setting('lock_timeout'), true)`)
		b.Queue(`SELECT set_config('lock_timeout', $1, true)`, claimLockWait)
		b.Queue(d.sql.insert, id, expires)
		b.Queue(d.sql.takeover, id, expires, now)
		b.Queue(`SELECT set_config('lock_timeout', current_setting('bizcircle.saved_lock_timeout'), true)`)
		inserted, taken, live, err := readClaim(tx.SendBatch(ctx, b))
		if err != nil {
			return false, claimError(ctx, "claim", err)
		}
		if inserted || taken {
			return true, nil
		}
		if live {
			return false, nil
		}
	}
	return false, errBusy // the row kept changing: look again later
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

// claimError turns a failed statement of the lookup or the claim into
// errBusy when it failed because another transaction holds the row: the
// lock_timeout expired, or stricter isolation levels refused the row another
// transaction changed. If ctx ended, it gives ErrInFlight and ctx's error.
func claimError(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", bizcircle.ErrInFlight, ctx.Err())
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03", // lock_not_available: lock_timeout
			"40001", // serialization_failure
			"40P01": // deadlock_detected
			return errBusy
		}
	}
	return fmt.Errorf("pgdedupe: %s: %w", step, err)
}
