package queue

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-bizcircle/bizcircle"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// A Queue is queue mode on River: its endpoint stores each verified
// notification as a River job and answers 204, and its workers (after
// [Queue.Start]) run the callbacks in the job's transaction, with retries.
// Receiving and working may be different processes on one database: a
// process that only receives never calls Start. A Queue includes the
// points-sync outbox ([Queue.SyncPointsTx]); modes that run callbacks on the
// request use an [Outbox] alone.
//
// A Queue is safe for concurrent use. Its zero value is not usable: create
// one with [New], and [Queue.Close] it when done.
type Queue struct {
	// outbox holds River's client, which works notifications too, and the
	// points syncs.
	outbox  *Outbox
	pool    *pgxpool.Pool
	decoder *bizcircle.Decoder
	// dispatcher keys events for the endpoint and runs callbacks in workers.
	dispatcher *bizcircle.Dispatcher
	committer  *committer
	opts       options
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
	q := &Queue{pool: pool, decoder: decoder, dispatcher: dispatcher, opts: o}
	if q.outbox, err = newOutbox(pool, apiV3Key, o, &notificationWorker{q: q}); err != nil {
		return nil, err
	}
	q.committer = newCommitter(pool, q.outbox.river, o.maxBatch, o.committers, o.insertTimeout)
	return q, nil
}

// newDispatcher returns a Dispatcher whose Deduper runs the callback: River
// deduplicates (WithBizcircle refuses another). It turns NewDispatcher's
// panics into errors.
func newDispatcher(cb bizcircle.Callbacks, opts []bizcircle.Option) (d *bizcircle.Dispatcher, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	return bizcircle.NewDispatcher(cb, append([]bizcircle.Option{bizcircle.WithDeduper(runDeduper{})}, opts...)...), nil
}

// runDeduper runs every callback: in queue mode River's unique jobs and the
// job's transaction make each event run once.
type runDeduper struct{}

func (runDeduper) Do(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

// Start starts the workers: notification jobs, and points syncs when
// [WithPointsClient] is set. They run until [Queue.Close] or until ctx is
// cancelled (a SIGTERM context, say); either way running jobs get up to
// [WithStopTimeout] to finish, then their contexts are cancelled: their
// transactions roll back and they run again later, here or elsewhere.
func (q *Queue) Start(ctx context.Context) error {
	need := q.opts.workers + 4
	if q.opts.points != nil {
		need += q.opts.syncWorkers
	}
	return q.outbox.start(ctx, need, "lower WithWorkers")
}

// Close stops the endpoint (notifications still arriving are answered 500)
// and the workers: it waits up to [WithStopTimeout] for running jobs, then
// cancels them (their transactions roll back; they run again later, here or
// in another process). It is safe to call more than once and from several
// goroutines.
func (q *Queue) Close() error {
	q.committer.close()
	return q.outbox.Close()
}

// River returns the River client, to insert other jobs or to watch events
// (Subscribe). Do not start or stop it: use [Queue.Start] and
// [Queue.Close]. Do not JobRetry a notification or sync job with it (nor
// with River's UI, unless routed as examples/riverui does): River retries
// completed jobs too, which runs an event a second time; [Admin.Replay]
// refuses them.
func (q *Queue) River() *river.Client[pgx.Tx] { return q.outbox.river }

// Admin returns the operations on the queue's jobs.
func (q *Queue) Admin() *Admin { return q.outbox.admin }

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
