package bizcircle

import (
	"context"
	"fmt"
)

// A route handles one event type: it decodes the plaintext into the typed
// event and returns the dedupe key and the callback bound to that event.
// Every handler, the built-in events' included, is a route.
type route struct {
	eventType string
	origin    string // who registered it, for conflict messages
	prepare   func(n *Notification) (key string, run func(context.Context) error, err error)
}

// On registers fn for the event type eventType (for example
// "TRANSACTION.SUCCESS" or "REFUND.SUCCESS"): the verified, decrypted
// plaintext is decoded into a new T with encoding/json (unknown fields are
// ignored; the built-in event types also leave malformed times zero), and fn
// runs once per event through the [Deduper].
//
// The dedupe key is eventType plus the business ID that key returns, so a
// manual re-push with a new notification ID is still one event; a nil key
// uses the notification ID. A key that returns "" makes the notification a
// 400 ([ErrPlaintext]), and so does a plaintext that is not T's JSON: give
// T string fields for values WeChat Pay may send in more than one form
// (times, for example), or the event is refused. A panicking key is a 500.
//
// On works with [New], [NewHandler], [NewDispatcher] and queue mode. Two
// handlers for one event type are a configuration error: two On for it
// ([New] and [VerifyAndDecrypt] return it), or On for a type the given
// [Callbacks] handle ([New] returns it); [NewHandler] and [NewDispatcher]
// panic with either. An empty eventType or a nil fn is an error too.
func On[T any](eventType string, key func(e *T) string, fn func(ctx context.Context, e *T) error) Option {
	return named("On", func(c *config) {
		if eventType == "" || fn == nil {
			c.failDispatch(fmt.Sprintf("On(%q): empty event type or nil func", eventType))
			return
		}
		c.addRoute(typedRoute(eventType, "On", "business ID", key, fn))
	})
}

// OnUnknown registers fn for every verified event type that no other
// handler takes, deduplicated by event type and notification ID. Without
// it such events are answered 204 and reported as [OutcomeIgnored]. A nil
// fn is an error from the constructors. Default: none.
func OnUnknown(fn func(ctx context.Context, n *Notification) error) Option {
	return named("OnUnknown", func(c *config) {
		switch {
		case fn == nil:
			c.failDispatch("OnUnknown: nil func")
		case c.unknown != nil:
			c.failDispatch("OnUnknown given twice")
		default:
			c.unknown = fn
		}
	})
}

// typedRoute decodes into a new T and keys it by key's ID, named idName in
// errors.
func typedRoute[T any](eventType, origin, idName string, key func(*T) string, fn func(context.Context, *T) error) route {
	decode := decoderFor[T]()
	return route{eventType: eventType, origin: origin, prepare: func(n *Notification) (string, func(context.Context) error, error) {
		e, err := guard(func() (*T, error) { return decode(n.Plaintext) })
		if err != nil {
			return "", nil, err
		}
		id := n.ID
		if key != nil {
			var err error
			if id, err = guard(func() (string, error) { return key(e), nil }); err != nil {
				return "", nil, err
			}
			if id == "" {
				return "", nil, fmt.Errorf("%w: no %s", ErrPlaintext, idName)
			}
		}
		return eventType + ":" + id, func(ctx context.Context) error { return fn(ctx, e) }, nil
	}}
}

// guard turns a panic in a user's key func or decoding (a type's own
// UnmarshalJSON) into an error wrapping ErrCallbackPanic: the request must
// be answered 500, and the retry may meet fixed code.
func guard[V any](f func() (V, error)) (v V, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = newPanicError(p)
		}
	}()
	return f()
}

// callbackRoutes registers cb's methods. A CallbackFuncs (or a pointer to
// one) registers only its non-nil fields, so an event whose field is nil is
// ignored, not "processed". A type that embeds CallbackFuncs is a Callbacks
// like any other: all its methods are registered.
func callbackRoutes(cb Callbacks) []route {
	var (
		payment func(context.Context, *PaymentEvent) error
		refund  func(context.Context, *RefundEvent) error
		auth    func(context.Context, *AuthorizationEvent) error
	)
	switch f := cb.(type) {
	case nil:
	case CallbackFuncs:
		payment, refund, auth = f.Payment, f.Refund, f.Authorization
	case *CallbackFuncs:
		if f != nil {
			payment, refund, auth = f.Payment, f.Refund, f.Authorization
		}
	default:
		payment, refund = cb.OnPayment, cb.OnRefund
		if ac, ok := cb.(AuthorizationCallback); ok {
			auth = ac.OnAuthorization
		}
	}
	var routes []route
	if payment != nil {
		routes = append(routes, typedRoute(EventPayment, "Callbacks", "transaction_id",
			func(e *PaymentEvent) string { return e.TransactionID }, payment))
	}
	if refund != nil {
		routes = append(routes, typedRoute(EventRefund, "Callbacks", "refund_id",
			func(e *RefundEvent) string { return e.RefundID }, refund))
	}
	if auth != nil {
		routes = append(routes, typedRoute[AuthorizationEvent](EventAuthorization, "Callbacks", "", nil, auth))
	}
	return routes
}

func (c *config) addRoute(r route) {
	if c.routes == nil {
		c.routes = make(map[string]route)
	}
	if prev, ok := c.routes[r.eventType]; ok {
		c.failDispatch(fmt.Sprintf("two handlers for event type %q (%s and %s)", r.eventType, prev.origin, r.origin))
		return
	}
	c.routes[r.eventType] = r
}
