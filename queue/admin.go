package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Admin is what an operator does with the queue's jobs: list the failed
// ones and the payments not synced yet, replay them and cancel them. It needs the database only, never WeChat Pay's keys,
// and shows no plaintext: jobs hold none. An Admin is safe for concurrent
// use; its zero value is not usable: get one from [NewAdmin] or
// [Queue.Admin].
type Admin struct {
	river *river.Client[pgx.Tx]
	pool  *pgxpool.Pool
}

// NewAdmin returns an Admin on pool's River tables. It takes the options
// WithSchema and WithLogger (any other is an error) and starts no goroutine.
func NewAdmin(pool *pgxpool.Pool, opts ...Option) (*Admin, error) {
	if pool == nil {
		return nil, errors.New("queue: nil pool")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := o.only("NewAdmin", "WithSchema", "WithLogger"); err != nil {
		return nil, err
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: o.schema, Logger: o.logger})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return &Admin{river: rc, pool: pool}, nil
}

// A Job is one of the queue's River jobs as an operator sees it: no
// plaintext, no signature.
type Job struct {
	ID   int64
	Kind string // KindNotification or KindSyncPoints
	// State is River's: available, scheduled, running, retryable,
	// completed, discarded or cancelled.
	State rivertype.JobState
	// EventType and NotificationID are a notification's; EventType is
	// "points sync" for a sync.
	EventType      string
	NotificationID string
	// Key is a notification's event key, or a sync's transaction_id.
	Key string
	// TransactionID is a payment notification's or a sync's.
	TransactionID string
	Attempt       int
	MaxAttempts   int
	// LastError is the last attempt's error, "" if none.
	LastError string
	CreatedAt time.Time
	// ScheduledAt is when the job runs (next); FinalizedAt when it
	// completed, was discarded or cancelled (zero before).
	ScheduledAt time.Time
	FinalizedAt time.Time
	// SupersededBy is, for a cancelled job, the later job of its key that
	// was enqueued (a corrected sync) or ran (a re-pushed notification):
	// the cancelled one is never replayed. 0 if none.
	SupersededBy int64
}

// EventSync is [Job.EventType] of points syncs.
const EventSync = "points sync"

func jobFromRow(r *rivertype.JobRow) Job {
	j := Job{
		ID:          r.ID,
		Kind:        r.Kind,
		State:       r.State,
		Attempt:     r.Attempt,
		MaxAttempts: r.MaxAttempts,
		CreatedAt:   r.CreatedAt,
		ScheduledAt: r.ScheduledAt,
	}
	if r.FinalizedAt != nil {
		j.FinalizedAt = *r.FinalizedAt
	}
	j.SupersededBy = supersededBy(r)
	if len(r.Errors) > 0 {
		j.LastError = r.Errors[len(r.Errors)-1].Error
	}
	switch r.Kind {
	case KindNotification:
		var a struct {
			Key            string `json:"key"`
			EventType      string `json:"event_type"`
			NotificationID string `json:"notification_id"`
		}
		_ = json.Unmarshal(r.EncodedArgs, &a) // a forged row may hold anything
		j.Key, j.EventType, j.NotificationID = a.Key, a.EventType, a.NotificationID
		if id, ok := strings.CutPrefix(a.Key, bizcircle.EventPayment+":"); ok {
			j.TransactionID = id
		}
	case KindSyncPoints:
		var a struct {
			TransactionID string `json:"transaction_id"`
		}
		_ = json.Unmarshal(r.EncodedArgs, &a)
		j.EventType, j.Key, j.TransactionID = EventSync, a.TransactionID, a.TransactionID
	}
	return j
}

// listPage is how many jobs one JobList call reads.
const listPage = 500

// list returns every job of the queue's kinds in states, oldest first.
func (a *Admin) list(ctx context.Context, kinds []string, states ...rivertype.JobState) ([]Job, error) {
	return a.listAll(ctx, river.NewJobListParams().Kinds(kinds...).States(states...))
}

// listAll returns every job params matches, oldest first.
func (a *Admin) listAll(ctx context.Context, params *river.JobListParams) ([]Job, error) {
	params = params.OrderBy(river.JobListOrderByID, river.SortOrderAsc).First(listPage)
	var jobs []Job
	for {
		res, err := a.river.JobList(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("queue: list jobs: %w", err)
		}
		for _, r := range res.Jobs {
			jobs = append(jobs, jobFromRow(r))
		}
		if len(res.Jobs) < listPage {
			return jobs, nil
		}
		params = params.After(res.LastCursor)
	}
}

// Failed returns the notification and points sync jobs that failed at least
// once and have not succeeded since: retrying (retryable, or available or
// running again after a failure) and discarded (dead letters); and every
// cancelled one, whether a worker cancelled it (the reason is its
// LastError) or an operator did ([Admin.Cancel]). Oldest first.
func (a *Admin) Failed(ctx context.Context) ([]Job, error) {
	jobs, err := a.list(ctx, []string{KindNotification, KindSyncPoints},
		rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateDiscarded,
		rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled)
	if err != nil {
		return nil, err
	}
	failed := jobs[:0]
	for _, j := range jobs {
		if j.LastError != "" || j.State == rivertype.JobStateCancelled {
			failed = append(failed, j)
		}
	}
	return failed, nil
}

// Unsynced returns the payments whose points sync WeChat Pay has not
// acknowledged yet, oldest first: points syncs not completed (waiting,
// retrying, discarded or refused), and payment notifications not processed
// yet, whose callback has not enqueued a sync. A payment is listed once, by
// its newest sync: a refused sync superseded by a corrected one is not
// listed, and a payment with an acknowledged (completed) sync is not listed
// at all. Rows the worker refused as forged are not payments: [Admin.Failed]
// lists them. Completed syncs are kept only for the completed-job retention,
// so this lists what is missing, not what was ever sent.
func (a *Admin) Unsynced(ctx context.Context) ([]Job, error) {
	jobs, err := a.list(ctx, []string{KindNotification, KindSyncPoints},
		rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateDiscarded,
		rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning, rivertype.JobStateScheduled)
	if err != nil {
		return nil, err
	}
	candidates := jobs[:0]
	seen := map[string]bool{} // transaction_ids of candidates
	var ids []string
	newestSync := map[string]int64{} // transaction_id → its newest sync job's ID
	for _, j := range jobs {
		if j.Kind != KindSyncPoints && j.EventType != bizcircle.EventPayment || forged(j) {
			continue
		}
		candidates = append(candidates, j)
		if j.TransactionID == "" {
			continue
		}
		if !seen[j.TransactionID] {
			seen[j.TransactionID] = true
			ids = append(ids, j.TransactionID)
		}
		if j.Kind == KindSyncPoints {
			newestSync[j.TransactionID] = j.ID // jobs are in ID order
		}
	}
	acked, err := a.acknowledged(ctx, ids)
	if err != nil {
		return nil, err
	}
	unsynced := candidates[:0]
	for _, j := range candidates {
		switch {
		case j.TransactionID == "":
			unsynced = append(unsynced, j)
		case acked[j.TransactionID], j.SupersededBy != 0:
		case j.Kind == KindSyncPoints && j.ID != newestSync[j.TransactionID]: // superseded
		default:
			unsynced = append(unsynced, j)
		}
	}
	return unsynced, nil
}

// forged reports whether j is a notification row its worker refused as not
// WeChat Pay's: a security event for Failed, not a payment to reconcile.
func forged(j Job) bool {
	return j.Kind == KindNotification && j.State == rivertype.JobStateCancelled &&
		(strings.Contains(j.LastError, ErrUnverified.Error()) || strings.Contains(j.LastError, ErrKeyMismatch.Error()))
}

// acknowledged returns which of transactionIDs have a completed points
// sync.
func (a *Admin) acknowledged(ctx context.Context, transactionIDs []string) (map[string]bool, error) {
	acked := map[string]bool{}
	for ids := range slices.Chunk(transactionIDs, listPage) {
		jobs, err := a.listAll(ctx, river.NewJobListParams().Kinds(KindSyncPoints).States(rivertype.JobStateCompleted).
			Where("args->>'transaction_id' = any(@bizcircle_transaction_ids::text[])",
				river.NamedArgs{"bizcircle_transaction_ids": ids}))
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			acked[j.TransactionID] = true
		}
	}
	return acked, nil
}

// Errors of [Admin.Replay] and [Admin.Cancel].
var (
	// ErrNotReplayable is returned by [Admin.Replay] for a job that is
	// running, completed (replaying it would run its callback again) or
	// already waiting to run; for a job superseded by a later job of the
	// same key (a corrected sync of the same transaction, a re-push of a
	// cancelled notification: replaying it would run the event twice); and
	// for a job of another kind.
	ErrNotReplayable = errors.New("queue: job is not replayable")
	// ErrNotCancellable is returned by [Admin.Cancel] for a job that is
	// running (its callback may be committing), completed, or already
	// discarded or cancelled, and for a job of another kind.
	ErrNotCancellable = errors.New("queue: job is not cancellable")
)

// Replay makes a retrying, discarded or cancelled job run again now, with
// one more attempt if it had none left, and returns it as it now is. A job
// that is running, completed or already available, or that a later job of
// the same key superseded, gives [ErrNotReplayable]; one that does not
// exist gives an error matching rivertype.ErrNotFound.
//
// The state check and the retry are one repeatable-read transaction, so a
// job that completes meanwhile is not run again: Replay fails instead.
func (a *Admin) Replay(ctx context.Context, id int64) (Job, error) {
	return a.transition(ctx, id, "replay", ErrNotReplayable, a.river.JobRetryTx,
		rivertype.JobStateCancelled, rivertype.JobStateDiscarded, rivertype.JobStateRetryable, rivertype.JobStateScheduled)
}

// Cancel stops a job that waits to run (available or scheduled) or to run
// again (retryable), such as a poisoned event that fails each attempt, and
// returns it as it now is: cancelled, listed by [Admin.Failed] (and, for a
// payment or a sync, by [Admin.Unsynced]) for as long as dead letters are
// kept ([WithDiscardedRetention], 30 days by default); [Admin.Replay] can run
// it again until then, unless a later job of its key superseded it. A job that is running, completed, discarded or
// cancelled gives [ErrNotCancellable]; one that does not exist gives an
// error matching rivertype.ErrNotFound.
//
// The state check and the cancel are one repeatable-read transaction, so a
// job a worker takes meanwhile is not cancelled: Cancel fails instead.
//
// A cancelled job no longer holds its key: a re-push of a cancelled
// notification by WeChat Pay is stored as a new job, and a cancelled sync's
// transaction can be synced again with [Queue.SyncPointsTx].
func (a *Admin) Cancel(ctx context.Context, id int64) (Job, error) {
	return a.transition(ctx, id, "cancel", ErrNotCancellable, a.river.JobCancelTx,
		rivertype.JobStateAvailable, rivertype.JobStateRetryable, rivertype.JobStateScheduled)
}

// transition applies op to job id if it is a notification or sync job in
// one of from, in one repeatable-read transaction; otherwise, and when the
// job changed meanwhile, it returns refused.
func (a *Admin) transition(ctx context.Context, id int64, verb string, refused error,
	op func(context.Context, pgx.Tx, int64) (*rivertype.JobRow, error), from ...rivertype.JobState) (Job, error) {
	tx, err := a.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return Job{}, fmt.Errorf("queue: %s %d: %w", verb, id, err)
	}
	defer tx.Rollback(ctx) // after Commit, a no-op
	row, err := a.river.JobGetTx(ctx, tx, id)
	if err != nil {
		return Job{}, fmt.Errorf("queue: %s %d: %w", verb, id, err)
	}
	switch {
	case row.Kind != KindNotification && row.Kind != KindSyncPoints:
		return Job{}, fmt.Errorf("%w: %d is a %s job", refused, id, row.Kind)
	case !slices.Contains(from, row.State):
		return Job{}, fmt.Errorf("%w: %d is %s", refused, id, row.State)
	case supersededBy(row) != 0:
		return Job{}, fmt.Errorf("%w: %d is superseded by job %d, a later job of its key", refused, id, supersededBy(row))
	}
	key := jobFromRow(row).Key
	row, err = op(ctx, tx, id)
	if err == nil {
		err = tx.Commit(ctx)
	}
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001": // serialization_failure
			return Job{}, fmt.Errorf("%w: %d changed meanwhile", refused, id)
		case "23505": // unique_violation of River's unique index: another job holds the key
			return Job{}, fmt.Errorf("%w: %d is superseded: a later job of key %s is waiting, running or done", refused, id, key)
		}
	}
	if err != nil {
		return Job{}, fmt.Errorf("queue: %s %d: %w", verb, id, err)
	}
	return jobFromRow(row), nil
}

// ReplayDiscarded replays every discarded notification and sync job
// discarded at or after since, as [Admin.Replay] does, and returns them.
// It stops at the first error, returning the jobs replayed so far.
func (a *Admin) ReplayDiscarded(ctx context.Context, since time.Time) ([]Job, error) {
	jobs, err := a.list(ctx, []string{KindNotification, KindSyncPoints}, rivertype.JobStateDiscarded)
	if err != nil {
		return nil, err
	}
	var replayed []Job
	for _, j := range jobs {
		if j.FinalizedAt.Before(since) {
			continue
		}
		r, err := a.Replay(ctx, j.ID)
		if errors.Is(err, ErrNotReplayable) {
			continue // replayed by someone else meanwhile
		}
		if err != nil {
			return replayed, err
		}
		replayed = append(replayed, r)
	}
	return replayed, nil
}

// Migrate creates or updates River's tables in pool's database with River's
// own migrations (rivermigrate), in the schema set by WithSchema, which it
// creates if needed. It takes the options WithSchema and WithLogger (any
// other is an error). It is safe to run again.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts ...Option) error {
	return migrate(ctx, pool, opts)
}
