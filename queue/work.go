package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Errors that cancel a notification job: it is never retried, and stays
// visible in [Admin.Failed] until River's cancelled-job retention ends. The
// observer and hooks get them too (see [bizcircle.Dispatcher.ReportStored]),
// and they name themselves for OpenTelemetry's error.type: their method
// ErrorType() string returns their Go name, such as "ErrUnverified".
var (
	// ErrUnverified: the stored request does not verify with WeChat Pay's
	// key or does not decrypt with the APIv3 key (a row someone wrote into
	// River's table, or keys changed since). No callback ran; the delivery
	// is rejected.
	ErrUnverified error = &sentinel{"ErrUnverified", "queue: stored notification does not verify"}
	// ErrKeyMismatch: the job's key is not the key of the notification it
	// holds (a row someone wrote into River's table). No callback ran; the
	// delivery is rejected.
	ErrKeyMismatch error = &sentinel{"ErrKeyMismatch", "queue: job key does not match its notification"}
	// ErrNoHandler: no handler takes the stored event's type any more. No
	// callback ran; the delivery failed: replay the job once a handler
	// takes it.
	ErrNoHandler error = &sentinel{"ErrNoHandler", "queue: no handler for the stored event type"}
)

// ErrTxOwned is returned by Commit and Rollback on the transaction from
// [Tx]: the worker ends it. Return nil from the callback to commit it, an
// error to roll it back.
var ErrTxOwned = errors.New("queue: the transaction is committed or rolled back by the worker")

type txKey struct{}

type jobKey struct{}

// Tx returns the transaction of the job running the callback that got ctx.
// Write the callback's records with it: they commit together with the job's
// completion, or not at all (an error, a panic, a lost connection or a
// timeout rolls them back and the job runs again). Do not use it after the
// callback returns, nor from several goroutines at once. Its Commit and
// Rollback return [ErrTxOwned]; Begin starts a savepoint as usual.
//
// ok is false when ctx does not come from a queue worker; tx is then not
// nil but fails every call with [ErrNoTx] (LargeObjects and Conn excepted),
// so code that ignores ok gets an error rather than a panic, and writes
// nothing outside the job's transaction.
func Tx(ctx context.Context) (tx pgx.Tx, ok bool) {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx, true
	}
	return noTx, false
}

// callbackTx is the transaction the callback gets: the worker ends it.
type callbackTx struct{ pgx.Tx }

func (callbackTx) Commit(context.Context) error   { return ErrTxOwned }
func (callbackTx) Rollback(context.Context) error { return ErrTxOwned }

// JobInfo describes the River job running a callback.
type JobInfo struct {
	ID          int64
	Attempt     int // 1 for the first run
	MaxAttempts int
	// Meta is [NotificationArgs.Meta], from the receiving side.
	Meta map[string]string
}

// JobFromContext returns the job running the callback that got ctx, and
// whether there is one.
func JobFromContext(ctx context.Context) (JobInfo, bool) {
	j, ok := ctx.Value(jobKey{}).(JobInfo)
	return j, ok
}

// notificationWorker works notification jobs.
type notificationWorker struct {
	river.WorkerDefaults[NotificationArgs]
	q *Queue
}

func (w *notificationWorker) Work(ctx context.Context, job *river.Job[NotificationArgs]) error {
	return w.q.work(ctx, job)
}

// finishTimeout bounds completing and committing a job whose callback
// succeeded: they no longer depend on the job's context.
const finishTimeout = 10 * time.Second

// work verifies and decrypts the stored notification, runs its callback in
// a transaction, and completes the job in that transaction. All of it is
// one delivery to the hooks; what it refuses, or fails to do outside the
// callback, it reports with ReportStored.
func (q *Queue) work(ctx context.Context, job *river.Job[NotificationArgs]) error {
	a := job.Args
	ctx, end := q.dispatcher.StartStored(ctx, bizcircle.Delivery{Header: a.Signed.Header(), Carried: a.Meta, Job: jobOf(job.JobRow)})
	defer end()
	n, err := q.decoder.DecodeStored(ctx, a.Signed.Header(), a.Signed.Body)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrUnverified, err)
		q.dispatcher.ReportStored(ctx, nil, bizcircle.OutcomeRejected, err)
		return river.JobCancel(err)
	}
	n.RequestID = a.Meta[metaRequestID]
	key, handled, err := q.dispatcher.EventKey(n)
	switch {
	case err != nil:
		q.dispatcher.ReportStored(ctx, n, bizcircle.OutcomeFailed, err)
		return err // the handler's key changed: a fix may come, retry
	case !handled:
		err := fmt.Errorf("%w: %s", ErrNoHandler, n.EventType)
		q.dispatcher.ReportStored(ctx, n, bizcircle.OutcomeFailed, err)
		return river.JobCancel(err)
	case key != a.Key:
		q.dispatcher.ReportStored(ctx, n, bizcircle.OutcomeRejected, ErrKeyMismatch)
		return river.JobCancel(ErrKeyMismatch)
	}

	tx, err := q.pool.Begin(ctx)
	if err != nil {
		err = fmt.Errorf("queue: begin: %w", err)
		q.dispatcher.ReportStored(ctx, n, bizcircle.OutcomeFailed, err)
		return err
	}
	committed := false
	defer func() {
		if !committed { // also when Dispatch returns a recovered panic
			// Bounded, and not cut short by ctx: a rollback that fails
			// closes the connection, which the server rolls back anyway.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			defer cancel()
			_ = tx.Rollback(rctx)
		}
	}()
	cctx := context.WithValue(bizcircle.NewContext(ctx, n), txKey{}, pgx.Tx(callbackTx{tx}))
	cctx = context.WithValue(cctx, jobKey{}, JobInfo{ID: job.ID, Attempt: job.Attempt, MaxAttempts: job.MaxAttempts, Meta: a.Meta})
	if _, err := q.dispatcher.Dispatch(cctx, n); err != nil {
		return err // reported by Dispatch
	}
	// The callback's work is done: finish it even if the job's context
	// ended meanwhile, rather than run it again. JobCompleteTx comes last:
	// it row-locks the job until the commit, and duplicate inserts wait on
	// that lock.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	// A cancelled job of this event must never run after this one.
	if err := supersede(fctx, tx, q.opts.schema, KindNotification, map[string]string{"key": a.Key}, job.ID); err != nil {
		q.dispatcher.ReportStored(ctx, n, bizcircle.OutcomeFailed, err)
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](fctx, tx, job); err != nil {
		err = fmt.Errorf("queue: complete job: %w", err)
		q.dispatcher.ReportStored(ctx, n, bizcircle.OutcomeFailed, err) // the callback's writes roll back
		return err
	}
	if err := tx.Commit(fctx); err != nil {
		err = fmt.Errorf("queue: commit: %w", err)
		q.dispatcher.ReportStored(ctx, n, bizcircle.OutcomeFailed, err)
		return err
	}
	committed = true
	return nil
}
