package queue

import (
	"github.com/go-bizcircle/bizcircle"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Job kinds and River queues of the package.
const (
	// KindNotification is the River job kind of a stored notification.
	KindNotification = "bizcircle_notification"
	// KindSyncPoints is the River job kind of a points sync (积分同步).
	KindSyncPoints = "bizcircle_sync_points"

	// QueueNotifications is the River queue notifications are worked in.
	QueueNotifications = "bizcircle"
	// QueueSync is the River queue points syncs are worked in, apart from
	// notifications so that WeChat Pay's API rate limits bound only them.
	QueueSync = "bizcircle_sync"
)

// NotificationArgs is the River job of one notification: the request as
// WeChat Pay signed it, with the resource still encrypted. Anyone who reads
// River's tables (or its UI) sees the event type, the notification ID and
// the event key (event type and business ID, such as the transaction_id),
// never an OpenID or an amount. The worker verifies the signature and
// decrypts again before running a callback.
//
// Jobs are unique by Key alone, so a re-push of an event with a new
// notification ID is still one job.
type NotificationArgs struct {
	// Key is the event key [bizcircle.Dispatcher.EventKey] gives, such as
	// "MALL_TRANSACTION.SUCCESS:4200001234".
	Key            string `json:"key" river:"unique"`
	EventType      string `json:"event_type"`
	NotificationID string `json:"notification_id"`
	// Signed is the request as signed: the Wechatpay-* headers and the raw
	// body (base64 in the job's JSON, so every byte survives jsonb).
	Signed bizcircle.SignedRequest `json:"signed"`
	// Meta is small data from the receiving side for the worker's side,
	// such as trace context; see [WithMeta]. It is not part of the
	// uniqueness. Never put plaintext in it.
	Meta map[string]string `json:"meta,omitempty"`
}

// Kind implements river.JobArgs.
func (NotificationArgs) Kind() string { return KindNotification }

// InsertOpts implements river.JobArgsWithInsertOpts: the notifications
// queue, unique by Key while a job with that key is pending, running,
// retrying, completed (until the completed-job retention, see
// [WithCompletedRetention]) or discarded.
//
// A duplicate of a discarded job (a dead letter) is answered 204 as a
// duplicate and inserts nothing: the dead letter stays the one record of the
// event, to be replayed with [Admin.Replay] once its cause is fixed. A
// duplicate of a cancelled job (one that did not verify, or that no handler
// took when it ran) is inserted as a new job.
func (NotificationArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueNotifications, UniqueOpts: uniqueOpts}
}

// uniqueOpts is River's default set of unique states plus discarded.
var uniqueOpts = river.UniqueOpts{
	ByArgs: true,
	ByState: []rivertype.JobState{
		rivertype.JobStateAvailable,
		rivertype.JobStateCompleted,
		rivertype.JobStateDiscarded,
		rivertype.JobStatePending,
		rivertype.JobStateRetryable,
		rivertype.JobStateRunning,
		rivertype.JobStateScheduled,
	},
}
