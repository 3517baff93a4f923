// Package bizcircle receives WeChat Pay 智慧商圈 (smart business circle)
// notifications, and any other WeChat Pay APIv3 notification: it verifies
// and decrypts them, runs typed callbacks for payments, refunds and
// authorizations (and for any event type registered with [On], or
// [OnUnknown] for the rest) exactly once across WeChat Pay's retries and
// concurrent duplicates, and answers in WeChat Pay's format.
//
// # The endpoint
//
// [New] returns the whole endpoint as an http.Handler: [VerifyAndDecrypt]
// (middleware that owns the body, checks the timestamp window, verifies the
// signature through a wechatpay-go auth.Verifier, and decrypts the
// resource) around [NewHandler] (which parses the event and runs its
// callback through a [Deduper]).
//
//	h, err := bizcircle.New(apiV3Key, verifier, bizcircle.CallbackFuncs{
//		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
//			return awardPoints(ctx, e) // an error makes WeChat Pay retry
//		},
//	})
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
// default; subpackages redisdedupe and pgdedupe share keys across replicas,
// and dedupetest checks any implementation.
//
// # Other frameworks
//
// [Decoder.Decode] takes headers and the raw body, [Dispatcher.Dispatch] a
// verified [Notification]: the middleware and handler are built on them.
//
// # Testing
//
// Package bizcircletest plays WeChat Pay: it signs and encrypts
// notifications with a test platform key, so callbacks can be tested end to
// end through the real verification.
package bizcircle
