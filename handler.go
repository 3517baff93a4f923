package bizcircle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// Callbacks process events. A callback that returns an error (or panics)
// gets the event again on WeChat Pay's next retry; one that returns nil
// never sees that event again, as far as the [Deduper] remembers it. The
// ctx is the request's, carrying the [Notification]; it is cancelled if
// WeChat Pay hangs up, which it does after about 5 seconds, so keep
// callbacks short. Callbacks may run concurrently for different events.
type Callbacks interface {
	OnPayment(ctx context.Context, e *PaymentEvent) error
	OnRefund(ctx context.Context, e *RefundEvent) error
}

// AuthorizationCallback is implemented by [Callbacks] that also process
// authorization events (MALL_AUTH.ACTIVATE_CARD). Without it those events
// are acknowledged and logged.
type AuthorizationCallback interface {
	OnAuthorization(ctx context.Context, e *AuthorizationEvent) error
}

// CallbackFuncs adapts plain functions to [Callbacks] and
// [AuthorizationCallback]. A nil field acknowledges its events unprocessed.
type CallbackFuncs struct {
	Payment       func(ctx context.Context, e *PaymentEvent) error
	Refund        func(ctx context.Context, e *RefundEvent) error
	Authorization func(ctx context.Context, e *AuthorizationEvent) error
}

// OnPayment calls f.Payment, if set.
func (f CallbackFuncs) OnPayment(ctx context.Context, e *PaymentEvent) error {
	if f.Payment == nil {
		return nil
	}
	return f.Payment(ctx, e)
}

// OnRefund calls f.Refund, if set.
func (f CallbackFuncs) OnRefund(ctx context.Context, e *RefundEvent) error {
	if f.Refund == nil {
		return nil
	}
	return f.Refund(ctx, e)
}

// OnAuthorization calls f.Authorization, if set.
func (f CallbackFuncs) OnAuthorization(ctx context.Context, e *AuthorizationEvent) error {
	if f.Authorization == nil {
		return nil
	}
	return f.Authorization(ctx, e)
}

// A Dispatcher parses verified notifications into typed events and runs the
// matching handler through a [Deduper], once per event. It is the
// http.Handler that [NewHandler] returns; frameworks that are not net/http
// call [Dispatcher.Dispatch]. A Dispatcher is safe for concurrent use; its
// zero value is not usable: create one with [NewDispatcher].
type Dispatcher struct {
	routes          map[string]route
	unknown         func(context.Context, *Notification) error
	deduper         Deduper
	callbackTimeout time.Duration
	logger          *slog.Logger
	ignored         *sampledLog // events no handler takes
	hangUps         *sampledLog // callbacks that outlived their context
	storedRejects   *sampledLog // stored notifications refused: see ReportStored
	storedFailures  *sampledLog
	observer        func(Observation)
	hooks           hooks
}

// NewDispatcher returns a Dispatcher for cb's events and the handlers
// registered with [On] and [OnUnknown]; cb may be nil when options register
// handlers. It uses the options WithDeduper, WithCallbackTimeout, On,
// OnUnknown, WithLogger, WithObserver and WithHook; the others, and their errors, are
// for [NewDecoder]. It panics, as http.ServeMux does for conflicting
// patterns, when two handlers take one event type, when nothing handles any
// event, and on an invalid option of its own (such as a nil Deduper).
func NewDispatcher(cb Callbacks, opts ...Option) *Dispatcher {
	d, err := newDispatcher(cb, newConfig(opts))
	if err != nil {
		panic(err.Error())
	}
	return d
}

func newDispatcher(cb Callbacks, c config) (*Dispatcher, error) {
	if cb != nil && isNilPointer(cb) {
		return nil, errors.New("bizcircle: nil Callbacks")
	}
	for _, r := range callbackRoutes(cb) {
		c.addRoute(r)
	}
	if c.dispatchErr != nil {
		return nil, c.dispatchErr
	}
	if len(c.routes) == 0 && c.unknown == nil {
		// An empty CallbackFuncs would acknowledge and drop every event.
		return nil, errors.New("bizcircle: no handler: Callbacks handle nothing and no On or OnUnknown is registered")
	}
	switch name := c.memoryOnly(); {
	case c.deduper == nil:
		c.deduper = newMemoryDeduper(c.memory, c.now)
	case name != "":
		return nil, fmt.Errorf("bizcircle: %s configures the default MemoryDeduper, and WithDeduper replaces it: configure that Deduper instead", name)
	}
	return &Dispatcher{
		routes:          c.routes,
		unknown:         c.unknown,
		deduper:         c.deduper,
		callbackTimeout: c.callbackTimeout,
		logger:          c.logger,
		ignored:         newSampledLog(c.logger, "notifications ignored"),
		hangUps:         newSampledLog(c.logger, "callbacks outliving their context"),
		storedRejects:   newSampledLogEvery(c.logger, "stored notifications rejected", storedLogBurst, storedLogInterval),
		storedFailures:  newSampledLogEvery(c.logger, "stored notifications failed", storedLogBurst, storedLogInterval),
		observer:        c.observer,
		hooks:           c.hooks,
	}, nil
}

// NewHandler returns the http.Handler that runs cb (and the handlers
// registered with [On] and [OnUnknown]) for notifications verified by
// [VerifyAndDecrypt]; mount it behind that middleware. A request without a
// verified Notification is answered 500 and runs no callback. It panics as
// [NewDispatcher] does.
func NewHandler(cb Callbacks, opts ...Option) http.Handler {
	return NewDispatcher(cb, opts...)
}

// New returns VerifyAndDecrypt wrapped around NewHandler: the whole
// notification endpoint. Its errors are those of [NewDecoder], and those
// [NewDispatcher] panics with (conflicting handlers, no handler at all, a
// nil Deduper).
func New(apiV3Key string, verifier auth.Verifier, cb Callbacks, opts ...Option) (http.Handler, error) {
	c := newConfig(opts)
	d, err := newDispatcher(cb, c)
	if err != nil {
		return nil, err
	}
	mw, err := VerifyAndDecrypt(apiV3Key, verifier, opts...)
	if err != nil {
		return nil, err
	}
	return mw(d), nil
}

// ServeHTTP dispatches the Notification in r's context and answers: 204 for
// processed, duplicate and ignored events, else the status [StatusCode]
// gives with WeChat Pay's failure body.
func (d *Dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := NotificationFromContext(r.Context())
	_, err := d.Dispatch(r.Context(), n)
	WriteAnswer(w, err)
}

// Dispatch parses n's plaintext into its event and runs its handler through
// the Deduper, keyed by [Dispatcher.EventKey]. Callback panics are recovered
// and returned as errors wrapping [ErrCallbackPanic]. A nil n gives
// [ErrNotVerified]. The error is nil exactly when WeChat Pay should be told
// the notification was received.
func (d *Dispatcher) Dispatch(ctx context.Context, n *Notification) (Outcome, error) {
	return d.DispatchWith(ctx, n, d.dedupe)
}

// DispatchWith is [Dispatcher.Dispatch] with do in place of the Deduper and
// callback: it parses and keys n, answers events that no handler takes as
// [OutcomeIgnored] without calling do, and otherwise calls do with the event
// key; it logs and reports do's outcome like Dispatch. Queue mode uses it to
// store events instead of running them.
func (d *Dispatcher) DispatchWith(ctx context.Context, n *Notification, do func(ctx context.Context, key string, run func(context.Context) error) (Outcome, error)) (Outcome, error) {
	ctx, end := d.startDelivery(ctx, n, nil)
	if end != nil {
		defer end()
	}
	start := time.Now()
	out, err := d.dispatch(ctx, n, do)
	d.report(ctx, start, n, out, err)
	return out, err
}

func (d *Dispatcher) dispatch(ctx context.Context, n *Notification, do func(context.Context, string, func(context.Context) error) (Outcome, error)) (Outcome, error) {
	if n == nil {
		return OutcomeFailed, ErrNotVerified
	}
	key, run, err := d.prepare(n)
	if errors.Is(err, ErrCallbackPanic) { // a key or decoder panicked: our fault, retried
		return OutcomeFailed, err
	}
	if err != nil {
		return OutcomeRejected, err
	}
	if run == nil {
		return OutcomeIgnored, nil
	}
	return do(ctx, key, func(ctx context.Context) error { return d.runCallback(ctx, n, run) })
}

// startDelivery starts the hooks' delivery of n unless one has started
// (behind the middleware), and only then builds the signature headers
// (seven allocations).
func (d *Dispatcher) startDelivery(ctx context.Context, n *Notification, carried map[string]string) (context.Context, func()) {
	if len(d.hooks) == 0 || n == nil || inDelivery(ctx) {
		return ctx, nil
	}
	return d.hooks.start(ctx, Delivery{Header: n.Signed.Header(), Carried: carried})
}

// Carry returns what the hooks (see [WithHook]) want stored with a
// notification that is processed later; give it back in the [Delivery] of
// [Dispatcher.StartStored]. It is nil without such hooks.
func (d *Dispatcher) Carry(ctx context.Context) map[string]string {
	return d.hooks.carry(ctx)
}

// EventKey returns the key n is deduplicated by: its event type plus the
// business ID its handler's key gives (transaction_id for payments, refund_id
// for refunds, the notification ID otherwise). It parses the plaintext, so
// it fails as [Dispatcher.Dispatch] would, with [ErrPlaintext]. handled is
// false, with no error, when no handler takes n's event type.
func (d *Dispatcher) EventKey(n *Notification) (key string, handled bool, err error) {
	if n == nil {
		return "", false, ErrNotVerified
	}
	key, run, err := d.prepare(n)
	return key, run != nil, err
}

// dedupe runs the callback through the Deduper and maps its answer.
func (d *Dispatcher) dedupe(ctx context.Context, key string, run func(context.Context) error) (Outcome, error) {
	ran, err := d.deduper.Do(ctx, key, run)
	switch {
	case err == nil && ran:
		return OutcomeProcessed, nil
	case err == nil:
		return OutcomeDuplicate, nil
	case errors.Is(err, ErrCallback), errors.Is(err, ErrCallbackPanic), errors.Is(err, ErrInFlight):
		return OutcomeFailed, err
	default:
		return OutcomeFailed, fmt.Errorf("%w: %w", ErrDeduper, err)
	}
}

// prepare parses the event and returns its dedupe key and callback; a nil
// callback means no handler takes the event type.
func (d *Dispatcher) prepare(n *Notification) (string, func(context.Context) error, error) {
	if r, ok := d.routes[n.EventType]; ok {
		return r.prepare(n)
	}
	if d.unknown == nil {
		return "", nil, nil
	}
	return n.EventType + ":" + n.ID, func(ctx context.Context) error { return d.unknown(ctx, n) }, nil
}

// runCallback runs a callback under WithCallbackTimeout, recovers it, and
// says in the log when it outlived the request: WeChat Pay hung up and will
// retry whatever the callback did.
func (d *Dispatcher) runCallback(ctx context.Context, n *Notification, run func(context.Context) error) error {
	start := time.Now()
	cctx := ctx
	if d.callbackTimeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, d.callbackTimeout)
		defer cancel()
	}
	endedBefore := ctx.Err() != nil
	var err error
	if len(d.hooks) == 0 {
		err = recovered(cctx, run)
	} else {
		err = d.hooks.wrap(n, func(ctx context.Context) error { return recovered(ctx, run) })(cctx)
	}
	if !endedBefore && ctx.Err() != nil {
		// Usually WeChat Pay hanging up (context canceled); a deduper's lost
		// lease or a queue job's timeout end it too: the cause says which.
		d.hangUps.log(ctx, slog.LevelWarn, "bizcircle: the callback's context ended while it ran: WeChat Pay hangs up after about 5 seconds and retries; bound callbacks with WithCallbackTimeout or use queue mode for slow work",
			slog.String("notification_id", idOf(n)), slog.Duration("callback_duration", time.Since(start)),
			slog.String("cause", context.Cause(ctx).Error()))
	} else if err != nil && cctx.Err() != nil {
		err = fmt.Errorf("%w (WithCallbackTimeout %v, ran %v)", err, d.callbackTimeout, time.Since(start).Round(time.Millisecond))
	}
	return err
}

func idOf(n *Notification) string {
	if n == nil {
		return ""
	}
	return n.ID
}

// recovered runs a callback, turning its error and panic into the package's
// errors. The panic value is not kept: it may hold event data.
func recovered(ctx context.Context, run func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = newPanicError(p)
		}
	}()
	if err := run(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrCallback, err)
	}
	return nil
}

func newPanicError(p any) error {
	return &panicError{typ: fmt.Sprintf("%T", p), stack: debug.Stack()}
}

type panicError struct {
	typ   string
	stack []byte
}

func (e *panicError) Error() string { return ErrCallbackPanic.Error() + " with a " + e.typ }
func (e *panicError) Unwrap() error { return ErrCallbackPanic }

func (d *Dispatcher) report(ctx context.Context, start time.Time, n *Notification, out Outcome, err error) {
	o := Observation{Outcome: out, Err: err, Duration: time.Since(start)}
	if n != nil {
		o.EventType, o.NotificationID, o.RequestID = n.EventType, n.ID, n.RequestID
	}
	if d.observer != nil {
		d.observer(o)
	}
	d.hooks.observe(ctx, o)
	level := outcomeLevel[out]
	if out == OutcomeIgnored {
		// Unhandled event types may be most of the traffic: log a sample.
		d.ignored.log(ctx, level, "bizcircle: notification ignored: no handler for its event type (register one with On or OnUnknown)",
			slog.String("event_type", o.EventType), slog.String("notification_id", o.NotificationID))
		return
	}
	if !d.logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("notification_id", o.NotificationID),
		slog.String("event_type", o.EventType),
		slog.String("request_id", o.RequestID),
		slog.String("outcome", out.String()),
		slog.Duration("duration", o.Duration),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	if pe := (*panicError)(nil); errors.As(err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.stack)))
	}
	d.logger.LogAttrs(ctx, level, "bizcircle: notification "+out.String(), attrs...)
}

// outcomeLevel logs what needs a person at Warn and above; duplicates are
// normal WeChat Pay traffic, so they cost nothing at the default level.
var outcomeLevel = [...]slog.Level{
	OutcomeProcessed: slog.LevelDebug,
	OutcomeDuplicate: slog.LevelDebug,
	OutcomeStored:    slog.LevelDebug,
	OutcomeIgnored:   slog.LevelInfo,
	OutcomeRejected:  slog.LevelWarn,
	OutcomeFailed:    slog.LevelError,
}
