package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// An Outbox is the points-sync outbox on its own, for code that runs its
// callbacks on the request (pgdedupe, or any code with a PostgreSQL
// transaction): [Outbox.SyncPointsTx] enqueues a sync in your transaction,
// and its sync workers (after [Outbox.Start]) send it to WeChat Pay, with
// retries, after the transaction commits. No notification is received or
// worked: that is [Queue], which includes an Outbox.
//
// Syncs are River jobs in [QueueSync] on the same tables as queue mode's
// (create them with [Migrate]), sealed with a key derived from the APIv3
// key: an Outbox and a Queue with the same key send each other's syncs, so
// a mall that switches modes keeps its pending syncs. Enqueueing and
// sending may be different processes: one that only enqueues never calls
// Start.
//
// An Outbox is safe for concurrent use. Its zero value is not usable:
// create one with [NewOutbox], and [Outbox.Close] it when done.
type Outbox struct {
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx]
	seal  *sealer // points syncs' arguments
	admin *Admin
	opts  options

	closeOnce sync.Once
	closeErr  error
}

// NewOutbox returns an Outbox on pool's River tables. apiV3Key (32 bytes)
// seals the syncs; during a key reset, [WithAPIv3Keys] opens syncs sealed
// under the old one. [WithPointsClient] sets the client that sends them:
// without it the Outbox only enqueues. It uses the options that configure
// River's jobs ([WithSchema], [WithLogger], [WithMaxAttempts],
// [WithRetryPolicy], [WithCompletedRetention], [WithDiscardedRetention],
// [WithJobTimeout], [WithStopTimeout], [WithFetchCooldown],
// [WithRiverConfig]); an option about notifications ([WithBizcircle],
// [WithWorkers], [WithInsertTimeout], [WithGroupCommit], [WithMeta],
// [WithPriorDeduper]) cannot apply and is an error, as are a nil pool, a key
// that is not 32 bytes and invalid options. NewOutbox starts no goroutine.
func NewOutbox(pool *pgxpool.Pool, apiV3Key string, opts ...Option) (*Outbox, error) {
	if pool == nil {
		return nil, errors.New("queue: nil pool")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if name := o.firstOf(notificationOptions...); name != "" {
		return nil, fmt.Errorf("queue: NewOutbox: %s cannot apply: an Outbox receives and works no notifications (New builds a Queue, which does)", name)
	}
	return newOutbox(pool, apiV3Key, o, nil)
}

// newOutbox returns the Outbox of NewOutbox, or of a Queue when
// notifications is not nil: River's client then works notifications too.
func newOutbox(pool *pgxpool.Pool, apiV3Key string, o options, notifications river.Worker[NotificationArgs]) (*Outbox, error) {
	seal, err := newSealer(append([]string{apiV3Key}, o.apiV3Keys...))
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &syncWorker{seal: seal, points: o.points, hooks: o.syncHooks})
	queues := map[string]river.QueueConfig{}
	if notifications != nil {
		river.AddWorker(workers, notifications)
		queues[QueueNotifications] = river.QueueConfig{MaxWorkers: o.workers}
	}
	if o.points != nil {
		queues[QueueSync] = river.QueueConfig{MaxWorkers: o.syncWorkers}
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), o.riverConfig(workers, queues))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return &Outbox{pool: pool, river: rc, seal: seal, admin: &Admin{river: rc, pool: pool}, opts: o}, nil
}

// riverConfig is River's configuration for workers and queues.
func (o *options) riverConfig(workers *river.Workers, queues map[string]river.QueueConfig) *river.Config {
	cfg := &river.Config{
		Schema:                      o.schema,
		Logger:                      o.logger,
		Workers:                     workers,
		Queues:                      queues,
		FetchCooldown:               o.fetchCooldown,
		MaxAttempts:                 o.maxAttempts,
		RetryPolicy:                 o.retryPolicy,
		CompletedJobRetentionPeriod: o.completedRetention,
		DiscardedJobRetentionPeriod: o.discardedRetention,
		CancelledJobRetentionPeriod: o.discardedRetention, // River's default, a day, would hide them from reconcile
		JobTimeout:                  o.jobTimeout,
		SoftStopTimeout:             o.stopTimeout,
	}
	for _, fn := range o.river {
		fn(cfg)
	}
	return cfg
}

// Start starts the sync workers set by [WithPointsClient]; without it
// Start is an error (a process that only enqueues does not call it). They
// run until [Outbox.Close] or until ctx is cancelled; either way running
// syncs get up to [WithStopTimeout] to finish, then their contexts are
// cancelled and they are sent again later, here or elsewhere.
func (b *Outbox) Start(ctx context.Context) error {
	if b.opts.points == nil {
		return errors.New("queue: Outbox.Start: no points client to send syncs with: set WithPointsClient")
	}
	return b.start(ctx, b.opts.syncWorkers+4, "lower WithPointsClient's workers")
}

// start starts River's client, first warning when the pool has fewer than
// need connections; lower says which option lowers the need.
func (b *Outbox) start(ctx context.Context, need int, lower string) error {
	if conns := b.pool.Config().MaxConns; conns < int32(need) {
		b.opts.logger.WarnContext(ctx, "queue: the pool has fewer connections than the workers need: jobs will wait for connections; raise pool_max_conns or "+lower,
			slog.Int("pool_max_conns", int(conns)), slog.Int("want_at_least", need))
	}
	if err := b.river.Start(ctx); err != nil {
		return fmt.Errorf("queue: start: %w", err)
	}
	return nil
}

// closeGrace is how long Close waits past the stop timeout for cancelled
// jobs to return.
const closeGrace = 5 * time.Second

// Close stops the sync workers: it waits up to [WithStopTimeout] for
// running syncs, then cancels them (they are sent again later). It is safe
// to call more than once and from several goroutines.
func (b *Outbox) Close() error {
	b.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.opts.stopTimeout+closeGrace)
		defer cancel()
		if err := b.river.Stop(ctx); err != nil {
			b.closeErr = fmt.Errorf("queue: stop: %w", err)
		}
	})
	return b.closeErr
}

// River returns the River client, to insert other jobs or to watch events
// (Subscribe). Do not start or stop it: use [Outbox.Start] and
// [Outbox.Close]. Do not JobRetry a sync job with it: River retries
// completed jobs too, which sends a sync a second time; [Admin.Replay]
// refuses them.
func (b *Outbox) River() *river.Client[pgx.Tx] { return b.river }

// Admin returns the operations on the outbox's jobs: [Admin.Failed] and
// [Admin.Unsynced] list the syncs WeChat Pay has not acknowledged.
func (b *Outbox) Admin() *Admin { return b.admin }
