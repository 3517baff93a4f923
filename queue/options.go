package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/riverqueue/river"
)

// Defaults of the options below.
const (
	// DefaultCompletedRetention is how long River keeps a completed job, and
	// so how long its key refuses duplicates: WeChat Pay retries for 24h4m,
	// so a day and two hours.
	DefaultCompletedRetention = 26 * time.Hour
	// DefaultDiscardedRetention is how long a dead letter stays visible and
	// replayable.
	DefaultDiscardedRetention = 30 * 24 * time.Hour
	// DefaultMaxAttempts is how many times a job runs before it is
	// discarded. With River's default retry policy (attempt⁴ seconds between
	// attempts, ±10%) the 25th attempt comes about 20 days after the first.
	DefaultMaxAttempts = 25
	// DefaultWorkers is how many notification jobs a process runs at once.
	// Each holds a pool connection while its callback runs.
	DefaultWorkers = 32
	// DefaultSyncWorkers is a sensible sync worker count for [WithPointsClient]:
	// with WeChat Pay answering in about 100ms, 8 workers send about 80 syncs
	// per second.
	DefaultSyncWorkers = 8
	// DefaultFetchCooldown is the least time between two fetches of a
	// queue. River's own default, 100ms, caps a process at about
	// workers/100ms jobs per second.
	DefaultFetchCooldown = 5 * time.Millisecond
	// DefaultJobTimeout bounds one attempt of a job.
	DefaultJobTimeout = time.Minute
	// DefaultInsertTimeout bounds storing a notification, well under the 5
	// seconds WeChat Pay waits for an answer.
	DefaultInsertTimeout = 2 * time.Second
	// DefaultStopTimeout is how long [Queue.Close] lets running jobs finish
	// before it cancels them (they are retried).
	DefaultStopTimeout = 10 * time.Second
	// DefaultMaxBatch bounds how many notifications one group commit stores.
	DefaultMaxBatch = 128
	// DefaultCommitters is how many group commits run at once. Fewer
	// committers make larger batches, which cost PostgreSQL less per
	// notification; two keep one slow commit from holding up every request.
	DefaultCommitters = 2
)

// minCompletedRetention is the least completed-job retention: WeChat Pay's
// retries span 24h4m.
const minCompletedRetention = bizcircle.DefaultTTL

// An Option configures [New] and [NewAdmin]. NewAdmin uses only WithSchema
// and WithLogger.
type Option func(*options)

type options struct {
	schema             string
	bizcircle          []bizcircle.Option
	apiV3Keys          []string
	logger             *slog.Logger
	workers            int
	syncWorkers        int
	fetchCooldown      time.Duration
	maxAttempts        int
	retryPolicy        river.ClientRetryPolicy
	completedRetention time.Duration
	discardedRetention time.Duration
	jobTimeout         time.Duration
	insertTimeout      time.Duration
	stopTimeout        time.Duration
	maxBatch           int
	committers         int
	points             *client.Client
	meta               func(context.Context, *bizcircle.Notification) map[string]string
	river              []func(*river.Config)
	syncHooks          []client.SyncHook

	err error // the first invalid option
}

func newOptions(opts []Option) (options, error) {
	o := options{
		logger:             slog.Default(),
		workers:            DefaultWorkers,
		syncWorkers:        DefaultSyncWorkers,
		fetchCooldown:      DefaultFetchCooldown,
		maxAttempts:        DefaultMaxAttempts,
		completedRetention: DefaultCompletedRetention,
		discardedRetention: DefaultDiscardedRetention,
		jobTimeout:         DefaultJobTimeout,
		insertTimeout:      DefaultInsertTimeout,
		stopTimeout:        DefaultStopTimeout,
		maxBatch:           DefaultMaxBatch,
		committers:         DefaultCommitters,
		meta:               requestIDMeta,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o, o.err
}

func (o *options) fail(format string, args ...any) {
	if o.err == nil {
		o.err = errors.New("queue: " + fmt.Sprintf(format, args...))
	}
}

// WithSchema sets the PostgreSQL schema of River's tables, as
// river.Config.Schema does; it must be the schema [Migrate] created them in.
// Default: "" (the connection's search_path).
func WithSchema(schema string) Option {
	return func(o *options) { o.schema = schema }
}

// WithBizcircle passes options to the decoder and dispatcher inside the
// queue: [bizcircle.On], [bizcircle.OnUnknown], [bizcircle.WithObserver],
// [bizcircle.WithClock], [bizcircle.WithCallbackTimeout] and the others.
// [bizcircle.WithDeduper] has no effect: River's unique jobs deduplicate.
// Default: none.
func WithBizcircle(opts ...bizcircle.Option) Option {
	return func(o *options) { o.bizcircle = append(o.bizcircle, opts...) }
}

// WithAPIv3Keys adds APIv3 keys tried after the primary one, as
// [bizcircle.WithAPIv3Keys] does, for stored notifications and for the
// sealed points syncs alike: use it, not bizcircle's, while a merchant
// resets its key, so that jobs stored under the old key still run. Default:
// none.
func WithAPIv3Keys(keys ...string) Option {
	return func(o *options) {
		o.apiV3Keys = append(o.apiV3Keys, keys...)
		o.bizcircle = append(o.bizcircle, bizcircle.WithAPIv3Keys(keys...))
	}
}

// WithLogger sets the logger of River and of the kit (as
// [bizcircle.WithLogger]). Records carry job IDs, kinds, event types and
// errors, never plaintext. nil keeps the default. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
			o.bizcircle = append(o.bizcircle, bizcircle.WithLogger(l))
		}
	}
}

// WithWorkers sets how many notification jobs this process runs at once
// (River's MaxWorkers for [QueueNotifications]). Each running job holds a
// pool connection for its transaction, so give the pool at least this many
// connections plus a few for River. A value below 1 is an error from [New].
// Default: [DefaultWorkers] (32).
func WithWorkers(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.fail("WithWorkers: need at least 1 worker")
			return
		}
		o.workers = n
	}
}

// WithFetchCooldown sets River's FetchCooldown, the least time between two
// fetches of jobs: a process works at most about workers/cooldown jobs per
// second. A value not above zero is an error from [New]. Default:
// [DefaultFetchCooldown] (5ms).
func WithFetchCooldown(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail("WithFetchCooldown: cooldown must be positive")
			return
		}
		o.fetchCooldown = d
	}
}

// WithMaxAttempts sets how many times a job runs before it is discarded (a
// dead letter, see [Admin.Replay]). A value below 1 is an error from [New].
// Default: [DefaultMaxAttempts] (25: about 20 days with River's default
// retry policy).
func WithMaxAttempts(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.fail("WithMaxAttempts: need at least 1 attempt")
			return
		}
		o.maxAttempts = n
	}
}

// WithRetryPolicy sets when a failed job runs again. nil keeps the
// default. Default: River's DefaultClientRetryPolicy (attempt⁴ seconds,
// ±10%: 1s, 16s, 81s, … 3.8 days before the 25th attempt).
func WithRetryPolicy(p river.ClientRetryPolicy) Option {
	return func(o *options) {
		if p != nil {
			o.retryPolicy = p
		}
	}
}

// WithCompletedRetention sets how long River keeps completed jobs, which is
// how long an event's key refuses duplicates after it was processed. Below
// 25 hours (WeChat Pay retries for 24h4m) it is an error from [New].
// Default: [DefaultCompletedRetention] (26 hours).
func WithCompletedRetention(d time.Duration) Option {
	return func(o *options) {
		if d < minCompletedRetention {
			o.fail("WithCompletedRetention: %v is under %v: WeChat Pay's retries would run callbacks again", d, minCompletedRetention)
			return
		}
		o.completedRetention = d
	}
}

// WithDiscardedRetention sets how long discarded jobs (dead letters) stay
// visible and replayable. A value not above zero is an error from [New].
// Default: [DefaultDiscardedRetention] (30 days).
func WithDiscardedRetention(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail("WithDiscardedRetention: retention must be positive")
			return
		}
		o.discardedRetention = d
	}
}

// WithJobTimeout bounds one attempt of a job: its context is cancelled
// after d, its transaction rolls back and it is retried. A value not above
// zero is an error from [New]. Default: [DefaultJobTimeout] (1 minute).
func WithJobTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail("WithJobTimeout: timeout must be positive")
			return
		}
		o.jobTimeout = d
	}
}

// WithInsertTimeout bounds how long the endpoint waits for a notification
// to be stored before it answers 500 (WeChat Pay retries; nothing is lost).
// A value not above zero, or over 4 seconds (WeChat Pay hangs up after 5),
// is an error from [New]. Default: [DefaultInsertTimeout] (2 seconds).
func WithInsertTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 || d > 4*time.Second {
			o.fail("WithInsertTimeout: want a timeout above 0 and at most 4s")
			return
		}
		o.insertTimeout = d
	}
}

// WithStopTimeout sets how long [Queue.Close] waits for running jobs before
// it cancels their contexts (their transactions roll back and they run
// again later). A value not above zero is an error from [New]. Default:
// [DefaultStopTimeout] (10 seconds).
func WithStopTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.fail("WithStopTimeout: timeout must be positive")
			return
		}
		o.stopTimeout = d
	}
}

// WithGroupCommit sets the endpoint's group commit: notifications that
// arrive while a commit is under way are stored together, at most maxBatch
// in one insert, by at most committers inserts at once. Each request is
// answered only after the commit holding its job. maxBatch 1 stores each
// notification with its own insert. Values below 1 are an error from
// [New]. Default: [DefaultMaxBatch] (128), [DefaultCommitters] (2).
func WithGroupCommit(maxBatch, committers int) Option {
	return func(o *options) {
		if maxBatch < 1 || committers < 1 {
			o.fail("WithGroupCommit: maxBatch and committers must be at least 1")
			return
		}
		o.maxBatch, o.committers = maxBatch, committers
	}
}

// WithPointsClient sets the client that sends the points syncs enqueued by
// [Queue.SyncPointsTx], and makes [Queue.Start] work [QueueSync] with
// workers sync workers. A process without it stores syncs but does not send
// them. A nil client or workers below 1 is an error from [New]. Default:
// none.
func WithPointsClient(c *client.Client, workers int) Option {
	return func(o *options) {
		if c == nil || workers < 1 {
			o.fail("WithPointsClient: nil client or fewer than 1 worker")
			return
		}
		o.points, o.syncWorkers = c, workers
	}
}

// WithMeta sets the function that fills [NotificationArgs.Meta] on the
// receiving side, for instance with trace context so that the worker's span
// can link to the request's. It runs on the request's goroutine with its
// context; keep the map small and never put plaintext in it. nil stores no
// Meta. Default: the Request-ID, under "request_id", when there is one.
func WithMeta(fn func(ctx context.Context, n *bizcircle.Notification) map[string]string) Option {
	return func(o *options) { o.meta = fn }
}

// WithRiverConfig lets fn change River's configuration after the queue set
// it, for River settings the queue has no option for (Hooks, Middleware,
// ErrorHandler, FetchPollInterval, Test.Time, …). Changing Workers, Queues or
// the retention periods can break the queue's guarantees. Default: none.
func WithRiverConfig(fn func(*river.Config)) Option {
	return func(o *options) {
		if fn != nil {
			o.river = append(o.river, fn)
		}
	}
}

// metaRequestID is the Meta key of the default Meta, the Request-ID, which
// the worker gives back to the Notification.
const metaRequestID = "request_id"

// requestIDMeta is the default Meta: the Request-ID.
func requestIDMeta(_ context.Context, n *bizcircle.Notification) map[string]string {
	if n.RequestID == "" {
		return nil
	}
	return map[string]string{metaRequestID: n.RequestID}
}

// WithSyncHook adds h to the hooks the sync worker runs around each attempt
// to send a points sync (see [WithPointsClient]): h.Start gets the River
// job, and the call to WeChat Pay runs with the ctx it returns; h.End gets
// the result (sent, retried, refused, discarded) and the error. Hooks run
// in the order given (End in reverse). otelbizcircle.InstrumentSync is one.
// Default: none.
func WithSyncHook(h client.SyncHook) Option {
	return func(o *options) { o.syncHooks = append(o.syncHooks, h) }
}
