package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
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

// An Option configures [New], [NewOutbox], [NewAdmin] and [Migrate].
// NewAdmin and Migrate use only WithSchema and WithLogger. NewOutbox refuses
// the options that configure notifications. An invalid value, which each
// option's documentation calls an error from New, is an error from whichever
// of them it is given to.
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
	prior              bizcircle.Deduper
	meta               func(context.Context, *bizcircle.Notification) map[string]string
	river              []func(*river.Config)
	syncHooks          []client.SyncHook

	given []string // the options applied, by name
	err   error    // the first invalid option
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

// notificationOptions configure notifications, which NewOutbox refuses.
var notificationOptions = []string{"WithBizcircle", "WithWorkers", "WithInsertTimeout", "WithGroupCommit", "WithPriorDeduper", "WithMeta"}

// firstOf returns the first option given that is one of names, "" if none.
func (o *options) firstOf(names ...string) string {
	for _, g := range o.given {
		if slices.Contains(names, g) {
			return g
		}
	}
	return ""
}

// named makes an Option that records its name, so that a constructor can
// refuse the options it cannot apply.
func named(name string, apply func(*options)) Option {
	return func(o *options) {
		o.given = append(o.given, name)
		apply(o)
	}
}

// only fails unless every option given is one of names: what a constructor
// that applies only those says of the others.
func (o *options) only(constructor string, names ...string) error {
	for _, g := range o.given {
		if !slices.Contains(names, g) {
			return fmt.Errorf("queue: %s: %s cannot apply: it takes only %s", constructor, g, strings.Join(names, " and "))
		}
	}
	return nil
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
	return named("WithSchema", func(o *options) { o.schema = schema })
}

// WithBizcircle passes options to the decoder and dispatcher inside the
// queue: [bizcircle.On], [bizcircle.OnUnknown], [bizcircle.WithObserver],
// [bizcircle.WithHook], [bizcircle.WithClock], [bizcircle.WithCallbackTimeout]
// and the others. The ones queue mode cannot apply as bizcircle does are an
// error from [New], which names what to use instead: [bizcircle.WithDeduper]
// (River's unique jobs deduplicate; see [WithPriorDeduper]),
// [bizcircle.WithAPIv3Keys] and [bizcircle.WithLogger] (use this package's
// [WithAPIv3Keys] and [WithLogger], which reach the points syncs and River
// too), and the MemoryDeduper's options. Default: none.
func WithBizcircle(opts ...bizcircle.Option) Option {
	return named("WithBizcircle", func(o *options) {
		for _, name := range bizcircle.OptionNames(opts...) {
			if instead, ok := refusedBizcircle[name]; ok {
				o.fail("WithBizcircle(bizcircle.%s(…)) cannot apply: %s", name, instead)
			}
		}
		o.bizcircle = append(o.bizcircle, opts...)
	})
}

// refusedBizcircle maps the bizcircle options WithBizcircle refuses to what
// to use instead.
var refusedBizcircle = map[string]string{
	"WithDeduper": "River's unique jobs deduplicate in queue mode; to answer the events a previous mode's Deduper " +
		"processed as duplicates, use WithPriorDeduper",
	"WithAPIv3Keys":    "use queue.WithAPIv3Keys, which also opens the points syncs and jobs sealed under an old key",
	"WithLogger":       "use queue.WithLogger, which River logs to as well",
	"WithTTL":          "queue mode has no MemoryDeduper: WithCompletedRetention is how long a key refuses duplicates",
	"WithMaxKeys":      "queue mode has no MemoryDeduper",
	"WithInFlightWait": "queue mode has no MemoryDeduper",
}

// WithAPIv3Keys adds APIv3 keys tried after the primary one, as
// [bizcircle.WithAPIv3Keys] does, for stored notifications and for the
// sealed points syncs alike: use it, not bizcircle's, while a merchant
// resets its key, so that jobs stored under the old key still run. Default:
// none.
func WithAPIv3Keys(keys ...string) Option {
	return named("WithAPIv3Keys", func(o *options) {
		o.apiV3Keys = append(o.apiV3Keys, keys...)
		o.bizcircle = append(o.bizcircle, bizcircle.WithAPIv3Keys(keys...))
	})
}

// WithLogger sets the logger of River and of the kit (as
// [bizcircle.WithLogger]). Records carry job IDs, kinds, event types and
// errors, never plaintext. nil keeps the default. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return named("WithLogger", func(o *options) {
		if l != nil {
			o.logger = l
			o.bizcircle = append(o.bizcircle, bizcircle.WithLogger(l))
		}
	})
}

// WithWorkers sets how many notification jobs this process runs at once
// (River's MaxWorkers for [QueueNotifications]). Each running job holds a
// pool connection for its transaction, so give the pool at least this many
// connections plus a few for River. A value below 1 is an error from [New].
// Default: [DefaultWorkers] (32).
func WithWorkers(n int) Option {
	return named("WithWorkers", func(o *options) {
		if n < 1 {
			o.fail("WithWorkers: need at least 1 worker")
			return
		}
		o.workers = n
	})
}

// WithFetchCooldown sets River's FetchCooldown, the least time between two
// fetches of jobs: a process works at most about workers/cooldown jobs per
// second. A value not above zero is an error from [New]. Default:
// [DefaultFetchCooldown] (5ms).
func WithFetchCooldown(d time.Duration) Option {
	return named("WithFetchCooldown", func(o *options) {
		if d <= 0 {
			o.fail("WithFetchCooldown: cooldown must be positive")
			return
		}
		o.fetchCooldown = d
	})
}

// WithMaxAttempts sets how many times a job runs before it is discarded (a
// dead letter, see [Admin.Replay]). A value below 1 is an error from [New].
// Default: [DefaultMaxAttempts] (25: about 20 days with River's default
// retry policy).
func WithMaxAttempts(n int) Option {
	return named("WithMaxAttempts", func(o *options) {
		if n < 1 {
			o.fail("WithMaxAttempts: need at least 1 attempt")
			return
		}
		o.maxAttempts = n
	})
}

// WithRetryPolicy sets when a failed job runs again. nil keeps the
// default. Default: River's DefaultClientRetryPolicy (attempt⁴ seconds,
// ±10%: 1s, 16s, 81s, … 3.8 days before the 25th attempt).
func WithRetryPolicy(p river.ClientRetryPolicy) Option {
	return named("WithRetryPolicy", func(o *options) {
		if p != nil {
			o.retryPolicy = p
		}
	})
}

// WithCompletedRetention sets how long River keeps completed jobs, which is
// how long an event's key refuses duplicates after it was processed. Below
// 25 hours (WeChat Pay retries for 24h4m) it is an error from [New].
// Default: [DefaultCompletedRetention] (26 hours).
func WithCompletedRetention(d time.Duration) Option {
	return named("WithCompletedRetention", func(o *options) {
		if d < minCompletedRetention {
			o.fail("WithCompletedRetention: %v is under %v: WeChat Pay's retries would run callbacks again", d, minCompletedRetention)
			return
		}
		o.completedRetention = d
	})
}

// WithDiscardedRetention sets how long discarded jobs (dead letters) and
// cancelled ones (a poisoned job an operator cancelled, a refused points
// sync) stay visible and replayable. A value not above zero is an error from [New].
// Default: [DefaultDiscardedRetention] (30 days).
func WithDiscardedRetention(d time.Duration) Option {
	return named("WithDiscardedRetention", func(o *options) {
		if d <= 0 {
			o.fail("WithDiscardedRetention: retention must be positive")
			return
		}
		o.discardedRetention = d
	})
}

// WithJobTimeout bounds one attempt of a job: its context is cancelled
// after d, its transaction rolls back and it is retried. A value not above
// zero is an error from [New]. Default: [DefaultJobTimeout] (1 minute).
func WithJobTimeout(d time.Duration) Option {
	return named("WithJobTimeout", func(o *options) {
		if d <= 0 {
			o.fail("WithJobTimeout: timeout must be positive")
			return
		}
		o.jobTimeout = d
	})
}

// WithInsertTimeout bounds how long the endpoint waits for a notification
// to be stored before it answers 500 (WeChat Pay retries; nothing is lost).
// A value not above zero, or over 4 seconds (WeChat Pay hangs up after 5),
// is an error from [New]. Default: [DefaultInsertTimeout] (2 seconds).
func WithInsertTimeout(d time.Duration) Option {
	return named("WithInsertTimeout", func(o *options) {
		if d <= 0 || d > 4*time.Second {
			o.fail("WithInsertTimeout: want a timeout above 0 and at most 4s")
			return
		}
		o.insertTimeout = d
	})
}

// WithStopTimeout sets how long [Queue.Close] waits for running jobs before
// it cancels their contexts (their transactions roll back and they run
// again later). A value not above zero is an error from [New]. Default:
// [DefaultStopTimeout] (10 seconds).
func WithStopTimeout(d time.Duration) Option {
	return named("WithStopTimeout", func(o *options) {
		if d <= 0 {
			o.fail("WithStopTimeout: timeout must be positive")
			return
		}
		o.stopTimeout = d
	})
}

// WithGroupCommit sets the endpoint's group commit: notifications that
// arrive while a commit is under way are stored together, at most maxBatch
// in one insert, by at most committers inserts at once. Each request is
// answered only after the commit holding its job. maxBatch 1 stores each
// notification with its own insert. Values below 1 are an error from
// [New]. Default: [DefaultMaxBatch] (128), [DefaultCommitters] (2).
func WithGroupCommit(maxBatch, committers int) Option {
	return named("WithGroupCommit", func(o *options) {
		if maxBatch < 1 || committers < 1 {
			o.fail("WithGroupCommit: maxBatch and committers must be at least 1")
			return
		}
		o.maxBatch, o.committers = maxBatch, committers
	})
}

// WithPointsClient sets the client that sends the points syncs enqueued by
// [Queue.SyncPointsTx] or [Outbox.SyncPointsTx], and makes [Queue.Start] or
// [Outbox.Start] work [QueueSync] with workers sync workers. A process
// without it stores syncs but does not send them. A nil client or workers
// below 1 is an error from [New] and [NewOutbox]. Default: none.
func WithPointsClient(c *client.Client, workers int) Option {
	return named("WithPointsClient", func(o *options) {
		if c == nil || workers < 1 {
			o.fail("WithPointsClient: nil client or fewer than 1 worker")
			return
		}
		o.points, o.syncWorkers = c, workers
	})
}

// WithPriorDeduper makes the endpoint store each notification through d,
// the [bizcircle.Deduper] of the mode the mall is switching from (pgdedupe,
// redisdedupe or its own, with the same table or key prefix): d.Do runs the
// store, keyed as in every mode ([bizcircle.Dispatcher.EventKey]). So an
// event the previous mode already processed, which WeChat Pay may still
// retry or re-push, is answered 204 as a duplicate and makes no job; an event
// the previous mode is processing at that moment gets d's answer for it
// (its in-flight wait, then 500 and a retry); any other event is stored as
// usual, and d marks its key done once the job is stored. A store that fails
// is returned from d.Do's function, so d releases the key and WeChat Pay's
// retry stores it again; a failure of d itself is answered 500 (errors wrap
// [bizcircle.ErrDeduper], or are [bizcircle.ErrInFlight]).
//
// Replicas of both modes may run side by side while the switch rolls out:
// through d, each event is processed by one of them, once.
//
// Remove it once WeChat Pay's 24h4m of retries have passed since the
// previous mode answered its last notification; until then each
// notification costs d's round trips too. A key d marks this way means
// "stored in the queue", not "processed": a mall that switches back to d's
// mode within d's TTL gets 204 for those events there and runs no callback,
// so keep the queue's workers running until every job is completed (see
// [Admin.Failed]). A nil d, typed nil pointers included, is an error from
// [New]. Default: none.
func WithPriorDeduper(d bizcircle.Deduper) Option {
	return named("WithPriorDeduper", func(o *options) {
		if d == nil || isNilPointer(d) {
			o.fail("WithPriorDeduper: nil Deduper")
			return
		}
		o.prior = d
	})
}

// isNilPointer reports a nil pointer in an interface (an ignored
// constructor error).
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// WithMeta sets the function that fills [NotificationArgs.Meta] on the
// receiving side, for instance with trace context so that the worker's span
// can link to the request's. It runs on the request's goroutine with its
// context; keep the map small and never put plaintext in it. nil stores no
// Meta. Default: the Request-ID, under "request_id", when there is one.
func WithMeta(fn func(ctx context.Context, n *bizcircle.Notification) map[string]string) Option {
	return named("WithMeta", func(o *options) {
		o.meta = fn
	})
}

// WithRiverConfig lets fn change River's configuration after the queue set
// it, for River settings the queue has no option for (Hooks, Middleware,
// ErrorHandler, FetchPollInterval, Test.Time, …). Changing Workers, Queues or
// the retention periods can break the queue's guarantees. Default: none.
func WithRiverConfig(fn func(*river.Config)) Option {
	return named("WithRiverConfig", func(o *options) {
		if fn != nil {
			o.river = append(o.river, fn)
		}
	})
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
	return named("WithSyncHook", func(o *options) { o.syncHooks = append(o.syncHooks, h) })
}
