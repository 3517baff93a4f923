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
// matching callback through a [Deduper], once per event. It is the
// http.Handler that [NewHandler] returns; frameworks that are not net/http
// call [Dispatcher.Dispatch]. A Dispatcher is safe for concurrent use; its
// zero value is not usable: create one with [NewDispatcher].
type Dispatcher struct {
	cb       Callbacks
	deduper  Deduper
	logger   *slog.Logger
	observer func(Observation)
}

// NewDispatcher returns a Dispatcher for cb. It uses the options
// WithDeduper, WithLogger and WithObserver, none of which can fail; the
// others, and their errors, are for [NewDecoder]. It panics if cb is nil.
func NewDispatcher(cb Callbacks, opts ...Option) *Dispatcher {
	if cb == nil {
		panic("bizcircle: nil Callbacks")
	}
	c := newConfig(opts)
	if c.deduper == nil {
		c.deduper = NewMemoryDeduper()
	}
	return &Dispatcher{cb: cb, deduper: c.deduper, logger: c.logger, observer: c.observer}
}

// NewHandler returns the http.Handler that runs cb for notifications
// verified by [VerifyAndDecrypt]; mount it behind that middleware. A request
// without a verified Notification is answered 500 and runs no callback. It
// panics if cb is nil.
func NewHandler(cb Callbacks, opts ...Option) http.Handler {
	return NewDispatcher(cb, opts...)
}

// New returns VerifyAndDecrypt wrapped around NewHandler: the whole
// notification endpoint. Its errors are those of [NewDecoder], and a nil cb.
func New(apiV3Key string, verifier auth.Verifier, cb Callbacks, opts ...Option) (http.Handler, error) {
	if cb == nil {
		return nil, errors.New("bizcircle: nil Callbacks")
	}
	mw, err := VerifyAndDecrypt(apiV3Key, verifier, opts...)
	if err != nil {
		return nil, err
	}
	return mw(NewHandler(cb, opts...)), nil
}

// ServeHTTP dispatches the Notification in r's context and answers: 204 for
// processed, duplicate and ignored events, else the status [StatusCode]
// gives with WeChat Pay's failure body.
func (d *Dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := NotificationFromContext(r.Context())
	_, err := d.Dispatch(r.Context(), n)
	writeAnswer(w, err)
}

// Dispatch parses n's plaintext into its event and runs the callback through
// the Deduper, keyed by event type and business ID (transaction_id for
// payments, refund_id for refunds, the notification ID otherwise). Callback
// panics are recovered and returned as errors wrapping [ErrCallbackPanic].
// A nil n gives [ErrNotVerified]. The error is nil exactly when WeChat Pay
// should be told the notification was received.
func (d *Dispatcher) Dispatch(ctx context.Context, n *Notification) (Outcome, error) {
	start := time.Now()
	out, err := d.dispatch(ctx, n)
	d.report(ctx, start, n, out, err)
	return out, err
}

func (d *Dispatcher) dispatch(ctx context.Context, n *Notification) (Outcome, error) {
	if n == nil {
		return OutcomeFailed, ErrNotVerified
	}
	key, run, err := d.prepare(n)
	if err != nil {
		return OutcomeRejected, err
	}
	if run == nil {
		return OutcomeIgnored, nil
	}
	ran, err := d.deduper.Do(ctx, key, func(ctx context.Context) error { return recovered(ctx, run) })
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
// callback means no callback handles the event type.
func (d *Dispatcher) prepare(n *Notification) (string, func(context.Context) error, error) {
	switch n.EventType {
	case EventPayment:
		e, key, err := parsePayment(n)
		return key, func(ctx context.Context) error { return d.cb.OnPayment(ctx, e) }, err
	case EventRefund:
		e, key, err := parseRefund(n)
		return key, func(ctx context.Context) error { return d.cb.OnRefund(ctx, e) }, err
	case EventAuthorization:
		ac, ok := d.cb.(AuthorizationCallback)
		if !ok {
			return "", nil, nil
		}
		e, key, err := parseAuthorization(n)
		return key, func(ctx context.Context) error { return ac.OnAuthorization(ctx, e) }, err
	}
	return "", nil, nil
}

// recovered runs a callback, turning its error and panic into the package's
// errors. The panic value is not kept: it may hold event data.
func recovered(ctx context.Context, run func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{typ: fmt.Sprintf("%T", p), stack: debug.Stack()}
		}
	}()
	if err := run(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrCallback, err)
	}
	return nil
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
	if d.logger.Enabled(ctx, outcomeLevel[out]) {
		attrs := []slog.Attr{
			slog.String("notification_id", o.NotificationID),
			slog.String("event_type", o.EventType),
			slog.String("request_id", o.RequestID),
			slog.String("outcome", out.String()),
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		if pe := (*panicError)(nil); errors.As(err, &pe) {
			attrs = append(attrs, slog.String("stack", string(pe.stack)))
		}
		d.logger.LogAttrs(ctx, outcomeLevel[out], "bizcircle: notification "+out.String(), attrs...)
	}
	if d.observer != nil {
		d.observer(o)
	}
}

var outcomeLevel = [...]slog.Level{
	OutcomeProcessed: slog.LevelDebug,
	OutcomeDuplicate: slog.LevelInfo,
	OutcomeIgnored:   slog.LevelInfo,
	OutcomeRejected:  slog.LevelWarn,
	OutcomeFailed:    slog.LevelError,
}
