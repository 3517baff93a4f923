package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// A Queue is queue mode on River: its endpoint stores each verified
// notification as a River job and answers 204, and its workers (after
// [Queue.Start]) run the callbacks in the job's transaction, with retries.
// Receiving and working may be different processes on one database: a
// process that only receives never calls Start.
//
// A Queue is safe for concurrent use. Its zero value is not usable: create
// one with [New], and [Queue.Close] it when done.
type Queue struct {
	pool    *pgxpool.Pool
	river   *river.Client[pgx.Tx]
	decoder *bizcircle.Decoder
	// dispatcher keys events for the endpoint and runs callbacks in workers.
	dispatcher *bizcircle.Dispatcher
	admin      *Admin
	committer  *committer
	seal       *sealer // points syncs' arguments
	opts       options

	closeOnce sync.Once
	closeErr  error
}

// New returns a Queue on pool's River tables (create them with [Migrate])
// for cb's events and the handlers registered with [bizcircle.On] and
// [bizcircle.OnUnknown] (pass those with [WithBizcircle]). apiV3Key and
// verifier are those of [bizcircle.New]: the endpoint checks each
// notification with them, and the worker checks each stored job with them
// again.
//
// New starts the endpoint's group-commit goroutines ([WithGroupCommit]);
// [Queue.Start] starts the workers; [Queue.Close] stops both. Its errors are
// those of [bizcircle.New], a nil pool, and invalid options, among them
// options that cannot apply, such as [bizcircle.WithDeduper] in
// [WithBizcircle].
func New(pool *pgxpool.Pool, apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, opts ...Option) (*Queue, error) {
	if pool == nil {
		return nil, errors.New("queue: nil pool")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	decoder, err := bizcircle.NewDecoder(apiV3Key, verifier, o.bizcircle...)
	if err != nil {
		return nil, err
	}
	dispatcher, err := newDispatcher(cb, o.bizcircle)
	if err != nil {
		return nil, err
	}
	seal, err := newSealer(append([]string{apiV3Key}, o.apiV3Keys...))
	if err != nil {
		return nil, err
	}
	q := &Queue{pool: pool, decoder: decoder, dispatcher: dispatcher, seal: seal, opts: o}
	if q.river, err = river.NewClient(riverpgxv5.New(pool), q.riverConfig()); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q.admin = &Admin{river: q.river, pool: pool}
	q.committer = newCommitter(pool, q.river, o.maxBatch, o.committers, o.insertTimeout)
	return q, nil
}

// errWithDeduper refuses bizcircle.WithDeduper among WithBizcircle's
// options, which queue mode cannot apply.
var errWithDeduper = errors.New("queue: WithBizcircle(bizcircle.WithDeduper(…)) cannot apply: River's unique jobs deduplicate in queue mode; " +
	"to answer the events a previous mode's Deduper processed as duplicates, use WithPriorDeduper")

// newDispatcher returns a Dispatcher whose Deduper runs the callback: River
// deduplicates. A Deduper among opts is an error. It turns NewDispatcher's
// panics into errors.
func newDispatcher(cb bizcircle.Callbacks, opts []bizcircle.Option) (d *bizcircle.Dispatcher, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	d = bizcircle.NewDispatcher(cb, append([]bizcircle.Option{bizcircle.WithDeduper(runDeduper{})}, opts...)...)
	if _, ok := d.Deduper().(runDeduper); !ok {
		return nil, errWithDeduper
	}
	return d, nil
}

// runDeduper runs every callback: in queue mode River's unique jobs and the
// job's transaction make each event run once.
type runDeduper struct{}

func (runDeduper) Do(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

func (q *Queue) riverConfig() *river.Config {
	o := &q.opts
	workers := river.NewWorkers()
	river.AddWorker(workers, &notificationWorker{q: q})
	river.AddWorker(workers, &syncWorker{q: q})
	queues := map[string]river.QueueConfig{QueueNotifications: {MaxWorkers: o.workers}}
	if o.points != nil {
		queues[QueueSync] = river.QueueConfig{MaxWorkers: o.syncWorkers}
	}
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
		JobTimeout:                  o.jobTimeout,
		SoftStopTimeout:             o.stopTimeout,
	}
	for _, fn := range o.river {
		fn(cfg)
	}
	return cfg
}

// Start starts the workers: notification jobs, and points syncs when
// [WithPointsClient] is set. They run until [Queue.Close] or until ctx is
// cancelled (a SIGTERM context, say); either way running jobs get up to
// [WithStopTimeout] to finish, then their contexts are cancelled: their
// transactions roll back and they run again later, here or elsewhere.
func (q *Queue) Start(ctx context.Context) error {
	need := int32(q.opts.workers + 4)
	if q.opts.points != nil {
		need += int32(q.opts.syncWorkers)
	}
	if conns := q.pool.Config().MaxConns; conns < need {
		q.opts.logger.WarnContext(ctx, "queue: the pool has fewer connections than the workers need: jobs will wait for connections; raise pool_max_conns or lower WithWorkers",
			slog.Int("pool_max_conns", int(conns)), slog.Int("want_at_least", int(need)))
	}
	if err := q.river.Start(ctx); err != nil {
		return fmt.Errorf("queue: start: %w", err)
	}
	return nil
}

// closeGrace is how long Close waits past the stop timeout for cancelled
// jobs to return.
const closeGrace = 5 * time.Second

// Close stops the endpoint (notifications still arriving are answered 500)
// and the workers: it waits up to [WithStopTimeout] for running jobs, then
// cancels them (their transactions roll back; they run again later, here or
// in another process). It is safe to call more than once and from several
// goroutines.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.committer.close()
		ctx, cancel := context.WithTimeout(context.Background(), q.opts.stopTimeout+closeGrace)
		defer cancel()
		if err := q.river.Stop(ctx); err != nil {
			q.closeErr = fmt.Errorf("queue: stop: %w", err)
		}
	})
	return q.closeErr
}

// River returns the River client, to insert other jobs or to watch events
// (Subscribe). Do not start or stop it: use [Queue.Start] and
// [Queue.Close]. Do not JobRetry a notification or sync job with it (nor
// with River's UI, unless routed as examples/riverui does): River retries
// completed jobs too, which runs an event a second time; [Admin.Replay]
// refuses them.
func (q *Queue) River() *river.Client[pgx.Tx] { return q.river }

// Admin returns the operations on the queue's jobs.
func (q *Queue) Admin() *Admin { return q.admin }

// Handler returns the http.Handler that stores the [bizcircle.Notification]
// in the request's context as a job and answers 204: mount it behind
// [bizcircle.VerifyAndDecrypt] with the same key and verifier, or use
// [Queue.Endpoint]. Events no handler takes are answered 204 and stored
// nowhere. A duplicate of an event whose job exists is answered 204 and
// inserts nothing. A store that fails or takes longer than
// [WithInsertTimeout] is answered 500, so WeChat Pay retries. No callback
// runs on the request's path.
//
// The observer set with [bizcircle.WithObserver] sees
// [bizcircle.OutcomeStored], [bizcircle.OutcomeDuplicate],
// [bizcircle.OutcomeIgnored] or [bizcircle.OutcomeFailed] here, and later,
// from the worker, [bizcircle.OutcomeProcessed] or OutcomeFailed per
// attempt.
func (q *Queue) Handler() http.Handler { return http.HandlerFunc(q.serveHTTP) }

// Endpoint returns the whole notification endpoint: the queue's
// [bizcircle.Decoder] middleware around [Queue.Handler], as [bizcircle.New]
// is for the other modes.
func (q *Queue) Endpoint() http.Handler { return q.decoder.Handler(q.Handler()) }
