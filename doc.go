// Package bizcircle receives WeChat Pay 智慧商圈 (smart business circle)
// notifications, and any other WeChat Pay APIv3 notification: it verifies
// and decrypts them, runs typed callbacks for payments, refunds and
// authorizations (and for any event type registered with [On], or
// [OnUnknown] for the rest) exactly once across WeChat Pay's retries and
// concurrent duplicates, and answers in WeChat Pay's format.
//
// # Where to start
//
// A mall needs a handful of names: [New] builds the endpoint,
// [CallbackFuncs] holds a callback per event, [PaymentEvent], [RefundEvent]
// and [AuthorizationEvent] are what they get, and [WithDeduper] shares
// exactly-once across replicas (subpackages redisdedupe and pgdedupe).
//
//	h, err := bizcircle.New(apiV3Key, verifier, bizcircle.CallbackFuncs{
//		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
//			return awardPoints(ctx, e) // an error makes WeChat Pay retry
//		},
//	})
//
// New is [VerifyAndDecrypt] (middleware that owns the body, checks the
// timestamp window, verifies the signature through a wechatpay-go
// auth.Verifier, and decrypts the resource) around [NewHandler] (which parses
// the event and runs its callback through a [Deduper]). Use them apart to
// put your own handler behind the middleware; it reads the verified
// [Notification] with [NotificationFromContext]. Other event types register
// with [On], the rest with [OnUnknown]. Every option is a With function;
// each states its default.
//
// # Answers
//
// Success, duplicates and event types no handler takes get 204. Failures get
// WeChat Pay's {"code":"FAIL","message":"…"} with 405, 403, 413, 401
// (authentication), 400 (malformed or undecryptable) or 500 (the callback or
// deduper failed, another delivery holds the event, or something read the
// body before the middleware), so WeChat Pay retries them. Every error
// wraps one of the package's Err values; [StatusCode] maps it to its status.
//
// # Exactly once
//
// Events are keyed by type and business ID. A callback error or panic
// releases the key so the retry runs it again; a success is remembered for
// 25 hours, past WeChat Pay's 24h4m of retries. [MemoryDeduper] is the
// default ([WithTTL], [WithMaxKeys] and [WithInFlightWait] configure it);
// subpackages redisdedupe and pgdedupe share keys across replicas, and
// dedupetest checks any implementation.
//
// # Extension points
//
//   - [Deduper]: where exactly-once is kept. Implement it for another store
//     and run package dedupetest's suite against it.
//   - [WithObserver] and [Hook]: each delivery's [Observation] (outcome,
//     event, durations, error) for logs and metrics, and hooks around it for
//     tracing; package otelbizcircle is built on them.
//   - [Decoder] and [Dispatcher]: the two halves of the endpoint, for a
//     framework that does not speak net/http. [Decoder.Decode] takes headers
//     and the raw body, [Dispatcher.Dispatch] a verified [Notification].
//
// Their other methods ([Decoder.DecodeStored], [Dispatcher.DispatchWith],
// [Dispatcher.StartStored], [Dispatcher.ReportStored], [Dispatcher.Carry],
// [Dispatcher.EventKey]), [OptionNames] and the types [SignedRequest],
// [Delivery] and [Job] are
// queue mode's and instrumentation's plumbing: package queue stores a
// notification and processes it later through them. A mall's code does not
// need them.
//
// # Testing
//
// Package bizcircletest plays WeChat Pay: it signs and encrypts
// notifications with a test platform key, so callbacks can be tested end to
// end through the real verification.
package bizcircle
