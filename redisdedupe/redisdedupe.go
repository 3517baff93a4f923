// Package redisdedupe is a [bizcircle.Deduper] on Redis, for a callback
// service that runs as several replicas: WeChat Pay's retries and concurrent
// duplicates reach any replica, and all of them share the Redis keys that say
// which events are in flight and which are done.
//
// It uses github.com/redis/go-redis/v9 and accepts any
// [redis.UniversalClient]: a single node, Sentinel or Cluster (each event is
// one key, so every command and script touches one slot).
//
//   - A fresh event costs two round trips: the claim, SET key token NX GET
//     with a random token and the lease as expiry, and the completion, a
//     script that sets the key to "done:"+token for the TTL if it still holds
//     the token.
//   - A duplicate costs one: the claim's GET tells a completed key (the
//     callback is not run, Do reports success) from one in flight
//     ([bizcircle.ErrInFlight], at once, without waiting).
//   - While the callback runs, a script renews the lease every third of it,
//     so a slow callback keeps its claim; if the process dies, the claim
//     lapses after the lease and a retry processes the event. If renewals
//     fail, the callback's context is cancelled a margin before the claim
//     can lapse (see [WithCancelMargin]), so the callback can stop before
//     another delivery may claim the event.
//   - The callback's context carries the claim's token, [FencingToken], for
//     writes that must come from the current holder only.
//   - A callback that fails or panics releases the key with a script that
//     deletes it only if it still holds the token.
//
// Each script acts only on its own token, so a holder whose lease lapsed
// never completes or releases another delivery's claim. Redis 7.0 or later
// takes the claim in one SET; older servers (from 2.6.12) refuse SET with
// both NX and GET, and the Deduper then claims with a script, still in one
// round trip.
//
// Completed keys are only as durable as Redis: run it with appendonly yes
// (appendfsync always loses no mark in a crash, everysec up to a second's)
// and a noeviction policy, or a restart or eviction lets WeChat Pay's later
// retries run completed events again. Likewise a Sentinel or Cluster
// failover that loses a claim (replication is asynchronous) lets another
// replica claim the event while the first still runs its callback, which can
// then run twice; keep callbacks idempotent on the business ID, or keep the
// ledger in PostgreSQL with pgdedupe, where the mark and the work commit
// together.
package redisdedupe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/redis/go-redis/v9"
)

// Defaults for a [Deduper].
const (
	// DefaultPrefix begins every key the Deduper writes.
	DefaultPrefix = "bizcircle:dedupe:"
	// DefaultLease is how long a claim outlives a holder that stopped
	// renewing it, such as a crashed process.
	DefaultLease = 30 * time.Second
	// DefaultTTL is how long a completed key is remembered: WeChat Pay's
	// retries span 24h4m, so a day and an hour covers them all.
	DefaultTTL = 25 * time.Hour
)

// ErrLeaseLost reports that a delivery's claim on an event lapsed while its
// callback ran and another delivery claimed or completed the event, so the
// callback may have run twice. The context passed to the callback is
// cancelled with this cause as soon as the Deduper notices, and also when
// renewals have failed for so long that the claim could lapse within the
// cancel margin (see [WithCancelMargin]), before another delivery can claim
// the event.
var ErrLeaseLost = errors.New("redisdedupe: lease lost: another delivery claimed the event while its callback ran")

// Deduper is a [bizcircle.Deduper] that keeps its keys in Redis, shared by
// every replica that uses the same Redis and prefix. It is safe for
// concurrent use. It starts one goroutine per running callback, to renew the
// lease, and stops it before Do returns, so it needs no Close.
//
// A Deduper does not outlive the data in Redis: if Redis loses its keys (a
// restart without persistence, an eviction under maxmemory), events completed
// before may run again when WeChat Pay retries them. See the package
// documentation.
type Deduper struct {
	client redis.UniversalClient
	prefix string
	lease  time.Duration
	ttl    time.Duration
	margin time.Duration // negative until New resolves it

	// legacy is set once the server refuses SET NX GET (Redis < 7.0); the
	// claim is then made by claimScript.
	legacy atomic.Bool

	err error // the first invalid option, New's error
}

// fail records the first invalid option for New.
func (d *Deduper) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("redisdedupe: "+format, args...)
	}
}

// An Option configures a [Deduper].
type Option func(*Deduper)

// WithPrefix sets the string that begins every Redis key, followed by the
// event key. Replicas of one service must use the same prefix; services that
// share a Redis must use different ones. Default: [DefaultPrefix].
func WithPrefix(prefix string) Option {
	return func(d *Deduper) { d.prefix = prefix }
}

// WithLease sets how long a claim outlives a holder that stopped renewing
// it. A running callback renews it every third of the lease, so the lease
// bounds how long a crashed holder delays the event, not how long a callback
// may run. A value below a millisecond is an error from [New]. Default:
// [DefaultLease] (30 seconds).
func WithLease(lease time.Duration) Option {
	return func(d *Deduper) {
		if lease < time.Millisecond {
			d.fail("WithLease: %v is under a millisecond", lease)
			return
		}
		d.lease = lease
	}
}

// WithTTL sets how long a completed key is remembered. Shorter than WeChat
// Pay's retry window of 24h4m, a late retry runs the callback again. A value
// below a millisecond is an error from [New]. Default: [DefaultTTL] (25
// hours).
func WithTTL(ttl time.Duration) Option {
	return func(d *Deduper) {
		if ttl < time.Millisecond {
			d.fail("WithTTL: %v is under a millisecond", ttl)
			return
		}
		d.ttl = ttl
	}
}

// WithCancelMargin sets how long before the claim can lapse in Redis the
// callback's context is cancelled, with cause [ErrLeaseLost], once renewals
// have failed. The claim is sure to last a lease from when the last
// successful renewal (or the claim) was sent, whenever its answer came back;
// the context is cancelled the margin before that, leaving the callback that
// long to stop, for instance to abandon a write, before another delivery may
// claim the event. Renewals are sent every third of the lease, so with the
// default margin two renewals in a row must fail. A negative margin, or one
// above half the lease, which would leave renewals no time, is an error from
// [New]. Default: a sixth of the lease (5 seconds with [DefaultLease]).
func WithCancelMargin(margin time.Duration) Option {
	return func(d *Deduper) {
		if margin < 0 {
			d.fail("WithCancelMargin: %v is negative", margin)
			return
		}
		d.margin = margin
	}
}

// New returns a Deduper on client with the key prefix [DefaultPrefix], a
// lease of [DefaultLease] and a TTL of [DefaultTTL], changed by opts. It
// makes no request to Redis. The Deduper does not close client. A nil client
// and invalid options are errors.
func New(client redis.UniversalClient, opts ...Option) (*Deduper, error) {
	if client == nil {
		return nil, errors.New("redisdedupe: New with a nil client")
	}
	d := &Deduper{client: client, prefix: DefaultPrefix, lease: DefaultLease, ttl: DefaultTTL, margin: -1}
	for _, opt := range opts {
		opt(d)
	}
	// Resolved after all options: the margin's default and bound follow
	// the lease.
	switch {
	case d.err != nil:
		return nil, d.err
	case d.margin < 0:
		d.margin = d.lease / 6
	case d.margin > d.lease/2:
		return nil, fmt.Errorf("redisdedupe: WithCancelMargin: %v is above half the lease (%v): renewals would have no time", d.margin, d.lease)
	}
	return d, nil
}

// Do implements [bizcircle.Deduper]: it runs fn unless key was already
// processed, and reports whether fn ran.
//
//   - A completed key gives (false, nil) and fn does not run.
//   - A key another delivery holds gives (false, [bizcircle.ErrInFlight]) at
//     once, without waiting: the handler answers 5xx and WeChat Pay's retry
//     sees the holder's outcome.
//   - If ctx is done, Do returns (false, ctx.Err()) and fn does not run.
//   - If Redis cannot be reached to claim the key, Do returns (false, err)
//     and fn does not run: the handler answers 5xx, and WeChat Pay's retry
//     processes the event. (If the SET reached Redis but its answer was lost,
//     the key stays claimed until the lease lapses.)
//   - fn runs with a context derived from ctx that carries the claim's
//     [FencingToken], cancelled with cause [ErrLeaseLost] if the claim is
//     lost, or, if renewals fail, the cancel margin before the claim can
//     lapse (see [WithCancelMargin]).
//   - If fn fails, Do releases the key and returns (true, fn's error, joined
//     with any error releasing it); if fn panics, Do releases the key and
//     the panic propagates. If the release fails, the key stays claimed
//     until the lease lapses, then the retry processes the event.
//   - If fn succeeds but marking the key done fails, Do returns (true, err):
//     the callback ran and its work stands, but the mark may be missing, so
//     WeChat Pay's next retry may run the callback again. err wraps the
//     Redis error, or [ErrLeaseLost] if another delivery claimed the key
//     meanwhile (it may be running the callback again too). Callbacks should
//     therefore be idempotent on the event's business key (transaction_id,
//     refund_id) for the rare failure of Redis between callback and mark.
//
// Marking and releasing use ctx's values but not its cancellation, so a
// caller that gives up after fn ran still records the outcome.
func (d *Deduper) Do(ctx context.Context, key string, fn func(ctx context.Context) error) (ran bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	rkey := d.prefix + key
	token := rand.Text()
	// The claim lasts at least a lease from when it was sent.
	sent := time.Now()
	claimed, err := d.claim(ctx, rkey, token)
	if !claimed {
		return false, err
	}

	fnCtx, cancel := context.WithCancelCause(context.WithValue(ctx, fencingTokenKey, token))
	defer cancel(nil)
	stopRenewing := d.renew(fnCtx, cancel, rkey, token, sent)
	finished := false
	defer func() {
		if !finished { // fn panicked or called runtime.Goexit
			stopRenewing()
			_ = d.release(ctx, rkey, token)
		}
	}()
	fnErr := fn(fnCtx)
	finished = true
	stopRenewing()

	if fnErr != nil {
		if err := d.release(ctx, rkey, token); err != nil {
			return true, errors.Join(fnErr, err)
		}
		return true, fnErr
	}
	return true, d.complete(ctx, rkey, token)
}

// claim makes one SET key token NX GET, expiring after the lease. It
// reports whether the caller now holds key; if not, err is nil for a
// completed key and ErrInFlight for a held one.
func (d *Deduper) claim(ctx context.Context, rkey, token string) (claimed bool, err error) {
	var old string
	if !d.legacy.Load() {
		old, err = d.client.SetArgs(ctx, rkey, token, redis.SetArgs{Mode: "NX", Get: true, TTL: d.lease}).Result()
		if err != nil && isSyntaxError(err) {
			d.legacy.Store(true)
		}
	}
	if d.legacy.Load() {
		old, err = claimScript.Run(ctx, d.client, []string{rkey}, token, d.lease.Milliseconds()).Text()
	}
	switch {
	case err == redis.Nil:
		return true, nil
	case err != nil:
		return false, fmt.Errorf("redisdedupe: claim: %w", err)
	case old == token:
		// The client retried a SET whose first attempt took the key.
		return true, nil
	case strings.HasPrefix(old, donePrefix):
		return false, nil
	default:
		return false, bizcircle.ErrInFlight
	}
}

// isSyntaxError reports whether err is the server refusing SET with both
// NX and GET, as Redis before 7.0 does.
func isSyntaxError(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(err.Error(), "ERR syntax error")
}

// renew extends the lease every third of it until the returned stop is
// called; stop returns once no renewal is running. claimed is when the claim
// was sent.
func (d *Deduper) renew(ctx context.Context, cancel context.CancelCauseFunc, rkey, token string, claimed time.Time) (stop func()) {
	return keepAlive(ctx, cancel, claimed, d.lease, d.margin, func(ctx context.Context) (bool, error) {
		held, err := renewScript.Run(ctx, d.client, []string{rkey}, token, d.lease.Milliseconds()).Int()
		return held == 1, err
	})
}

// keepAlive calls renew every third of the lease until the returned stop is
// called; stop returns once no renewal is running. renew reports whether
// the caller still holds the claim.
//
// A claim lasts at least a lease from when the last successful renewal, or
// the claim (at claimed), was sent: Redis set its expiry after that. So
// keepAlive cancels with ErrLeaseLost margin before then, unless a renewal
// succeeds meanwhile; and at once if renew reports the claim lost. It keeps
// going after cancelling, so a claim that comes back is still renewed.
func keepAlive(ctx context.Context, cancel context.CancelCauseFunc, claimed time.Time, lease, margin time.Duration,
	renew func(context.Context) (bool, error)) (stop func()) {
	lapse := time.AfterFunc(time.Until(claimed.Add(lease-margin)), func() { cancel(ErrLeaseLost) })
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		ctx := context.WithoutCancel(ctx)
		tick := time.NewTicker(lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			sent := time.Now()
			rctx, done := context.WithTimeout(ctx, lease/3)
			held, err := renew(rctx)
			done()
			switch {
			case err == nil && held:
				lapse.Reset(time.Until(sent.Add(lease - margin)))
			case err == nil:
				cancel(ErrLeaseLost)
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
		lapse.Stop()
	}
}

// contextKey is the type of the keys of the context values the Deduper
// sets; a pointer to one is a key no other package can make.
type contextKey struct{ name string }

func (k *contextKey) String() string { return "redisdedupe context value " + k.name }

var fencingTokenKey = &contextKey{"FencingToken"}

// FencingToken returns the token of the claim held by the [Deduper.Do] call
// running the callback that got ctx; ok is false when ctx does not come from
// a redisdedupe callback. Each claim has a new random token (26 characters
// of upper-case base32), so a token names one delivery's claim: compare
// tokens for equality, they are not ordered.
//
// Use it to fence the callback's writes against a delivery whose claim
// lapsed while it still ran (a long pause, a partition from Redis) and
// another that claimed the event since: store the token with the record the
// callback writes, and accept a write only if it carries the token the
// record holds. For instance, in SQL:
//
//	INSERT INTO points_ledger (event_id, fence, points) VALUES ($1, $2, $3)
//	ON CONFLICT (event_id) DO UPDATE SET points = EXCLUDED.points
//	WHERE points_ledger.fence = EXCLUDED.fence
//
// inserts the record with the token, lets the same claim write it again,
// and refuses (no row affected) a write under any other claim: the record
// is another delivery's, so write nothing more for the event. In the same
// Redis, a script can instead check that the dedupe key (the prefix and the
// event key) still holds the token before it writes, in one atomic step.
func FencingToken(ctx context.Context) (token string, ok bool) {
	token, ok = ctx.Value(fencingTokenKey).(string)
	return token, ok
}

// complete marks rkey done for the TTL if the caller still holds it.
func (d *Deduper) complete(ctx context.Context, rkey, token string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.lease)
	defer cancel()
	marked, err := completeScript.Run(ctx, d.client, []string{rkey}, token, donePrefix+token, d.ttl.Milliseconds()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redisdedupe: the callback ran but marking it done failed, a retry may run it again: %w", err)
	case marked != 1:
		return fmt.Errorf("redisdedupe: the callback ran but was not marked done: %w", ErrLeaseLost)
	}
	return nil
}

// release deletes rkey if the caller still holds it.
func (d *Deduper) release(ctx context.Context, rkey, token string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.lease)
	defer cancel()
	if err := releaseScript.Run(ctx, d.client, []string{rkey}, token).Err(); err != nil {
		return fmt.Errorf("redisdedupe: release: the event stays claimed until its lease lapses: %w", err)
	}
	return nil
}
