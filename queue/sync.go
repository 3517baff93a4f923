package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-bizcircle/bizcircle/client"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// SyncPointsArgs is the River job of one points sync (积分同步), enqueued by
// [Outbox.SyncPointsTx] or [Queue.SyncPointsTx]. The request names the
// shopper's OpenID, so it is sealed: only the transaction_id is readable in
// River's tables.
//
// Jobs are unique by TransactionID while one is pending, retrying,
// completed (until the completed-job retention) or discarded; a sync
// cancelled because WeChat Pay refused it can be enqueued again, corrected.
type SyncPointsArgs struct {
	TransactionID string `json:"transaction_id" river:"unique"`
	// Sealed is the request, AES-256-GCM under a key derived from the
	// APIv3 key, bound to TransactionID.
	Sealed []byte `json:"sealed"`
}

// Kind implements river.JobArgs.
func (SyncPointsArgs) Kind() string { return KindSyncPoints }

// InsertOpts implements river.JobArgsWithInsertOpts: the sync queue, unique
// by TransactionID.
func (SyncPointsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueSync, UniqueOpts: uniqueOpts}
}

// syncRequest is a client.SyncPointsRequest as sealed.
type syncRequest struct {
	SubMchID         string    `json:"sub_mchid,omitempty"`
	TransactionID    string    `json:"transaction_id"`
	AppID            string    `json:"appid"`
	OpenID           string    `json:"openid"`
	EarnPoints       bool      `json:"earn_points"`
	IncreasedPoints  int64     `json:"increased_points"`
	PointsUpdateTime time.Time `json:"points_update_time"`
	NoPointsRemarks  string    `json:"no_points_remarks,omitempty"`
	TotalPoints      *int64    `json:"total_points,omitempty"`
}

// SyncPointsTx enqueues r in tx: a points sync that a sync worker sends with
// the client set by [WithPointsClient], retried on River's schedule while
// WeChat Pay answers 5xx or 429 or cannot be reached, and cancelled (never
// retried) when it answers another 4xx, with WeChat Pay's code and message
// recorded on the job (see [Admin.Failed], [Admin.Unsynced]). The job
// commits with tx or not at all: enqueue from a pgdedupe callback with
// pgdedupe.Tx, or from any transaction of yours on the Outbox's database,
// so the points and their sync commit together.
//
// It returns false, with no error, when a sync of r.TransactionID is
// already enqueued (or was sent within the completed-job retention). An
// invalid r is a [*client.ValidationError]. A nil tx, or the one [Tx] or
// pgdedupe.Tx returns outside a callback, is an error matching [ErrNoTx]
// or pgdedupe.ErrNoTx: nothing is enqueued.
//
// Sending a sync twice: the worker always sends the request as enqueued,
// so a retry after a network error that hid a success repeats the identical
// request for the same transaction_id (a sync states one transaction's
// points; WeChat Pay's pages do not document summing repeats).
// What is not safe is a second, different sync of one transaction (other
// points or balance): uniqueness by transaction_id refuses it here. Leave
// TotalPoints nil unless the balance cannot go stale: a sync sent after a
// day-long outage carries the balance as it was when it was enqueued.
func (b *Outbox) SyncPointsTx(ctx context.Context, tx pgx.Tx, r client.SyncPointsRequest) (enqueued bool, err error) {
	if tx == nil {
		return false, fmt.Errorf("queue: SyncPointsTx: %w", ErrNoTx)
	}
	if err := r.Validate(); err != nil {
		return false, fmt.Errorf("queue: SyncPointsTx: %w", err)
	}
	plain, err := json.Marshal(syncRequest(r))
	if err != nil {
		return false, fmt.Errorf("queue: SyncPointsTx: %w", err)
	}
	args := SyncPointsArgs{TransactionID: r.TransactionID, Sealed: b.seal.seal(plain, []byte(r.TransactionID))}
	if ctx, ok := tx.(callbackTx); ok {
		tx = ctx.Tx
	}
	res, err := b.river.InsertTx(ctx, tx, args, nil)
	if err != nil {
		return false, fmt.Errorf("queue: SyncPointsTx: %w", err)
	}
	if res.UniqueSkippedAsDuplicate {
		return false, nil
	}
	// A refused sync of this transaction must never be sent after this one.
	if err := supersede(ctx, tx, b.opts.schema, KindSyncPoints, map[string]string{"transaction_id": r.TransactionID}, res.Job.ID); err != nil {
		return false, fmt.Errorf("queue: SyncPointsTx: %w", err)
	}
	return true, nil
}

// SyncPointsTx enqueues r in tx, as [Outbox.SyncPointsTx] does: enqueue
// from a callback with [Tx], so the points and their sync commit together
// with the job's completion.
func (q *Queue) SyncPointsTx(ctx context.Context, tx pgx.Tx, r client.SyncPointsRequest) (enqueued bool, err error) {
	return q.outbox.SyncPointsTx(ctx, tx, r)
}

// ErrSyncRefused: WeChat Pay answered a points sync with a 4xx other than
// 429 (a validation or authorization failure): the job is cancelled, not
// retried, with the answer recorded (also as the job's output, a
// [SyncRefusal]). Fix the cause, then replay it, or enqueue a corrected
// sync instead: once one is enqueued, replaying the refused job is refused
// ([ErrNotReplayable]), so that the points are not synced twice. For
// OpenTelemetry's error.type it names itself "ErrSyncRefused".
var ErrSyncRefused error = &sentinel{"ErrSyncRefused", "queue: WeChat Pay refused the points sync"}

// A SyncRefusal is WeChat Pay's answer to a refused points sync, recorded
// as the cancelled job's output.
type SyncRefusal struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// syncWorker sends points syncs.
type syncWorker struct {
	river.WorkerDefaults[SyncPointsArgs]
	seal   *sealer
	points *client.Client
	hooks  []client.SyncHook // WithSyncHook's
}

// send sends the job's sync; Work runs it inside the sync hooks.
func (w *syncWorker) send(ctx context.Context, job *river.Job[SyncPointsArgs]) error {
	api := w.points
	if api == nil {
		// Only a client with WithPointsClient works QueueSync.
		return errors.New("queue: no points client: use WithPointsClient")
	}
	plain, err := w.seal.open(job.Args.Sealed, []byte(job.Args.TransactionID))
	if err != nil {
		return river.JobCancel(err)
	}
	var r syncRequest
	if err := json.Unmarshal(plain, &r); err != nil {
		return river.JobCancel(fmt.Errorf("%w: not a points sync", ErrSealed))
	}
	err = api.SyncPoints(ctx, client.SyncPointsRequest(r))
	if err == nil {
		return nil
	}
	if verr := (*client.ValidationError)(nil); errors.As(err, &verr) {
		return river.JobCancel(err)
	}
	if apiErr := (*core.APIError)(nil); errors.As(err, &apiErr) && apiErr.StatusCode >= 400 &&
		apiErr.StatusCode < 500 && apiErr.StatusCode != http.StatusTooManyRequests {
		refusal := SyncRefusal{Status: apiErr.StatusCode, Code: apiErr.Code, Message: apiErr.Message}
		_ = river.RecordOutput(ctx, refusal) // best effort: the error carries the same
		return river.JobCancel(fmt.Errorf("%w: %d %s: %s", ErrSyncRefused, refusal.Status, refusal.Code, refusal.Message))
	}
	return err // 5xx, 429, network: River retries
}
