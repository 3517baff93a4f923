package bizcircle

import (
	"context"
	"maps"
	"net/http"
)

// A Hook instruments deliveries, for tracing and metrics: package
// otelbizcircle is one. Add hooks with [WithHook]; every field may be nil.
// Hooks run on the request's goroutine and must be safe for concurrent use.
//
// A delivery is one request through [VerifyAndDecrypt] (and the handler
// behind it), one call of [Decoder.Decode] or [Dispatcher.Dispatch] made
// outside a delivery, or one stored notification processed by queue mode.
type Hook struct {
	// Start runs when a delivery starts, before the body is read. The ctx
	// it returns is the delivery's: verification, the deduper, the callback
	// and End run with it, so spans started under it nest.
	Start func(ctx context.Context, d Delivery) context.Context
	// Observe gets each of the delivery's Observations (those WithObserver
	// gets) with the delivery's ctx.
	Observe func(ctx context.Context, o Observation)
	// Callback wraps each callback run: it must call run once, with ctx or
	// a ctx derived from it, and return run's error.
	Callback func(ctx context.Context, n *Notification, run func(context.Context) error) error
	// End runs when the delivery is over.
	End func(ctx context.Context)
	// Carry returns values to store with a notification that queue mode
	// processes later; the worker's delivery gets them back in
	// [Delivery.Carried] (to link the worker's span to the receiving one).
	Carry func(ctx context.Context) map[string]string
}

// A Delivery describes a starting delivery to [Hook.Start].
type Delivery struct {
	// Header holds the request's headers; for a stored notification, the
	// signature headers it was received with.
	Header http.Header
	// Carried is nil for a request; for a stored notification, what the
	// hooks' Carry returned when it was received.
	Carried map[string]string
	// Job is nil for a request; for a stored notification, the queued job
	// processing it (see [Dispatcher.StartStored]).
	Job *Job
}

// WithHook adds h; hooks run in the order given (End in reverse).
// Default: none.
func WithHook(h Hook) Option {
	return named("WithHook", func(c *config) { c.hooks = append(c.hooks, h) })
}

type hooks []Hook

type deliveryKey struct{}

// inDelivery reports whether ctx is a delivery's, so that callers can skip
// building a Delivery that start would not use.
func inDelivery(ctx context.Context) bool { return ctx.Value(deliveryKey{}) != nil }

// start starts a delivery unless ctx is already in one, and returns its
// ctx and the func that ends it (nil when there is nothing to end).
func (hs hooks) start(ctx context.Context, d Delivery) (context.Context, func()) {
	if len(hs) == 0 || inDelivery(ctx) {
		return ctx, nil
	}
	ctx = context.WithValue(ctx, deliveryKey{}, true)
	for _, h := range hs {
		if h.Start != nil {
			ctx = h.Start(ctx, d)
		}
	}
	return ctx, func() {
		for i := len(hs) - 1; i >= 0; i-- {
			if hs[i].End != nil {
				hs[i].End(ctx)
			}
		}
	}
}

func (hs hooks) observe(ctx context.Context, o Observation) {
	for _, h := range hs {
		if h.Observe != nil {
			h.Observe(ctx, o)
		}
	}
}

// wrap returns run wrapped by every Callback hook, the first outermost.
func (hs hooks) wrap(n *Notification, run func(context.Context) error) func(context.Context) error {
	for i := len(hs) - 1; i >= 0; i-- {
		if cb := hs[i].Callback; cb != nil {
			inner := run
			run = func(ctx context.Context) error { return cb(ctx, n, inner) }
		}
	}
	return run
}

func (hs hooks) carry(ctx context.Context) map[string]string {
	var m map[string]string
	for _, h := range hs {
		if h.Carry == nil {
			continue
		}
		if c := h.Carry(ctx); len(c) > 0 {
			if m == nil {
				m = make(map[string]string, len(c))
			}
			maps.Copy(m, c)
		}
	}
	return m
}
