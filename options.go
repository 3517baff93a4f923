package bizcircle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Defaults for the options below.
const (
	// DefaultTolerance is how far Wechatpay-Timestamp may be from the clock,
	// either way: WeChat Pay's own rule.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodyBytes bounds the body read before verification. A real
	// notification is about 1 KiB; 64 KiB leaves room and keeps a flood of
	// large unsigned bodies cheap.
	DefaultMaxBodyBytes = 64 << 10
)

// An Option configures [VerifyAndDecrypt], [NewHandler], [New] and the lower
// level [NewDecoder] and [NewDispatcher]. Each of these uses the options that
// concern it and ignores the others, so one list can serve all.
// [NewMemoryDeduper] takes only the options that configure a deduper.
type Option func(*config)

type config struct {
	now             func() time.Time
	tolerance       time.Duration
	maxBody         int64
	deduper         Deduper
	logger          *slog.Logger
	observer        func(Observation)
	allowed         func(*http.Request) bool // nil: every source
	apiV3Keys       []string                 // tried after the primary key
	callbackTimeout time.Duration            // 0: none
	routes          map[string]route         // by event type
	unknown         func(context.Context, *Notification) error
	hooks           hooks

	memory memoryConfig // the default MemoryDeduper's
	given  []string     // the options applied, by name (OptionNames)

	err         error // the first invalid option, reported by the constructor
	dispatchErr error // the first invalid option that concerns the dispatcher
}

func newConfig(opts []Option) config {
	c := config{
		now:       time.Now,
		tolerance: DefaultTolerance,
		maxBody:   DefaultMaxBodyBytes,
		logger:    slog.Default(),
		memory:    memoryConfig{ttl: DefaultTTL, maxKeys: DefaultMaxKeys, wait: DefaultInFlightWait},
	}
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

func (c *config) fail(msg string) {
	if c.err == nil {
		c.err = errors.New("bizcircle: " + msg)
	}
}

// failDispatch records an error that [NewDispatcher] and [NewHandler],
// which return no error, panic with.
func (c *config) failDispatch(msg string) {
	c.fail(msg)
	if c.dispatchErr == nil {
		c.dispatchErr = errors.New("bizcircle: " + msg)
	}
}

// named makes an Option that records its name, for [OptionNames].
func named(name string, apply func(*config)) Option {
	return func(c *config) {
		c.given = append(c.given, name)
		apply(c)
	}
}

// OptionNames returns the names of opts ("WithLogger", "On", …) in order,
// for code that takes a list of bizcircle options and must refuse some of
// them: package queue refuses WithDeduper, whose job River's unique jobs do.
func OptionNames(opts ...Option) []string {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	return c.given
}

// WithClock sets the clock that Wechatpay-Timestamp is checked against and
// that expires a [MemoryDeduper]'s keys; nil is an error from the
// constructor. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return named("WithClock", func(c *config) {
		if now == nil {
			c.fail("WithClock: nil clock")
			return
		}
		c.now = now
	})
}

// WithTolerance sets how far Wechatpay-Timestamp may be from the clock, in
// either direction, exactly: with 500ms a timestamp (whole seconds) is
// accepted only within half a second of the clock. A value not above zero is
// an error from the constructor. Default: [DefaultTolerance] (5 minutes).
func WithTolerance(d time.Duration) Option {
	return named("WithTolerance", func(c *config) {
		if d <= 0 {
			c.fail("WithTolerance: tolerance must be positive")
			return
		}
		c.tolerance = d
	})
}

// WithMaxBodyBytes bounds the request body; a longer one, whatever its
// Content-Length says, is answered 413. A value not above zero is an error
// from the constructor. Default: [DefaultMaxBodyBytes] (64 KiB).
func WithMaxBodyBytes(n int64) Option {
	return named("WithMaxBodyBytes", func(c *config) {
		if n <= 0 {
			c.fail("WithMaxBodyBytes: limit must be positive")
			return
		}
		c.maxBody = n
	})
}

// WithDeduper sets the [Deduper] that runs each event's callback once. A nil
// Deduper, typed nil pointers included (an ignored constructor error), is an
// error from the constructors; [NewHandler] and [NewDispatcher] panic with
// it. Default: a [MemoryDeduper] per handler, with its defaults.
func WithDeduper(d Deduper) Option {
	return named("WithDeduper", func(c *config) {
		if d == nil || isNilPointer(d) {
			c.failDispatch("WithDeduper: nil Deduper")
			return
		}
		c.deduper = d
	})
}

// WithCallbackTimeout bounds each callback run: its ctx is cancelled after d,
// and a callback that returns the ctx's error fails (500, WeChat Pay
// retries). WeChat Pay hangs up after about 5 seconds anyway; work that
// takes longer belongs in queue mode (package queue), which acknowledges at
// once and processes with retries for days. A value not above zero is an
// error from the constructors. Default: none (the request's ctx only).
func WithCallbackTimeout(d time.Duration) Option {
	return named("WithCallbackTimeout", func(c *config) {
		if d <= 0 {
			c.failDispatch("WithCallbackTimeout: timeout must be positive")
			return
		}
		c.callbackTimeout = d
	})
}

// WithAPIv3Keys adds APIv3 keys, tried in order after the primary one when a
// resource does not decrypt with it: while a merchant resets its key, or for
// several merchants behind one URL (with a verifier that knows all their
// platform keys). [Notification.KeyIndex] says which key decrypted a
// notification. A failed attempt costs about a microsecond. Each key must be
// 32 bytes and differ from the others, the primary included, else the
// constructor returns an error. Default: none.
func WithAPIv3Keys(keys ...string) Option {
	return named("WithAPIv3Keys", func(c *config) {
		for _, k := range keys {
			if len(k) != 32 {
				c.fail(fmt.Sprintf("WithAPIv3Keys: a key must be 32 bytes, got %d", len(k)))
				return
			}
		}
		c.apiV3Keys = append(c.apiV3Keys, keys...)
	})
}

// WithLogger sets the logger for rejections, failures and duplicates. Log
// records carry the notification ID, event type and Request-ID, never keys or
// plaintext. nil keeps the default. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return named("WithLogger", func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithObserver sets a function called once per outcome (verified, rejected,
// processed, duplicate, ignored, failed, stored) with its duration, for metrics. It
// runs on the request's goroutine and must be fast and safe for concurrent
// use. Default: none.
func WithObserver(fn func(Observation)) Option {
	return named("WithObserver", func(c *config) { c.observer = fn })
}
