// Package otelbizcircle instruments bizcircle with OpenTelemetry: a span
// per notification that the callback's own spans nest under, and the
// metrics operators expect. It is built on the OpenTelemetry API only; the
// application chooses the SDK and exporters.
//
//	h, err := bizcircle.New(apiV3Key, verifier, callbacks, otelbizcircle.Instrument())
//
// [Instrument] uses the global providers unless given others with
// [WithTracerProvider] and [WithMeterProvider]. It adds a [bizcircle.Hook],
// so it sees every delivery: a request through the middleware, a lone
// Decode or Dispatch, and a stored notification in queue mode.
//
// [InstrumentClient] traces the calls a client.Client makes to WeChat Pay's
// API, and [InstrumentSync] the attempts of queue mode's points-sync
// worker. Queue mode takes all three:
//
//	points, err := client.New(coreClient, otelbizcircle.InstrumentClient())
//	q, err := queue.New(pool, apiV3Key, verifier, callbacks,
//		queue.WithBizcircle(otelbizcircle.Instrument()),
//		queue.WithPointsClient(points, queue.DefaultSyncWorkers),
//		queue.WithSyncHook(otelbizcircle.InstrumentSync()))
//
// # Traces
//
// Each delivery gets one span, covering reading the body, verification,
// decryption, the Deduper and the callback. The callback's ctx carries it,
// so the spans the callback starts (database, HTTP) are its children.
// Code that calls Decode and then Dispatch makes two deliveries, so two
// spans: start a span around both (a framework's OpenTelemetry middleware
// does) to have them in one trace.
//
//   - Parent: a span already in the ctx (an HTTP server middleware's, such
//     as otelhttp's), making this span Internal; else the trace context in the
//     request's headers (a traceparent from a gateway, read with the
//     propagator), making it a Server span.
//   - Queue mode: the worker's span is a Consumer span with a link to the
//     span that received the notification; its parent is the worker's span
//     in ctx, if any. After OpenTelemetry's messaging conventions it has
//     messaging.system ("river", a custom value: River is not a registered
//     one), messaging.operation.type and messaging.operation.name
//     ("process"), messaging.destination.name (the River queue,
//     "bizcircle"), messaging.message.id (the job's ID), and
//     bizcircle.job.attempt (1 for the first run). A stored notification
//     that no longer verifies, a row someone wrote into River's table, is a
//     rejected delivery with error.type "ErrUnverified" (queue's error);
//     one under another event's key, "ErrKeyMismatch".
//   - Name: "WeChatPay notification", then "WeChatPay " and the event type,
//     such as "WeChatPay MALL_TRANSACTION.SUCCESS", once it verified.
//   - Attributes: bizcircle.event_type and bizcircle.notification_id (once
//     verified), bizcircle.request_id (WeChat Pay's Request-ID),
//     bizcircle.outcome (the last [bizcircle.Outcome]: "processed",
//     "rejected"…), bizcircle.dedupe ("new" when the callback ran,
//     "duplicate", "in_flight" or "error"), and on failures error.type
//     ([ErrorType]: the sentinel's Go name, such as "ErrSignature").
//   - Status, as OpenTelemetry's HTTP conventions have it for a server: a
//     rejected request (answered 4xx: a bad signature, a forged body) is the
//     sender's error and leaves the status unset; a failed delivery
//     (answered 5xx: the callback or the Deduper failed) sets it to Error.
//     A worker's Consumer span has no one to answer: any error sets Error.
//     The description is the sentinel's fixed message, never the error's
//     text.
//
// Calls to WeChat Pay ([InstrumentClient]): each HTTP request, each retry
// its own, is a Client span after OpenTelemetry's HTTP client conventions,
// named after its method and path template, such as "POST
// /v3/businesscircle/points/notify", under the span in the call's ctx.
// Attributes: http.request.method, url.full (with "REDACTED" for the
// OpenID a path carries), url.template, server.address, server.port,
// http.response.status_code (when an answer came), http.request.resend_count
// (on a retry) and, on failures, error.type (the status code, such as
// "500"; "timeout"; or [ErrorType]'s). Any failure, a 4xx included, sets the
// status to Error.
//
// Points syncs in queue mode ([InstrumentSync]): each attempt of the sync
// worker is a Consumer span "WeChatPay points sync", with the job's
// messaging attributes as a stored notification's (messaging.destination.name
// "bizcircle_sync"), bizcircle.sync.result (sent, retried, refused or
// discarded, see client.SyncResult) and, on failures, error.type ("500",
// "429" or "_OTHER" for a retried one; "ErrSyncRefused" or "ErrSealed" for a
// refused one) and the status Error. The call to WeChat Pay is its child.
//
// Nothing from the plaintext (OpenIDs, amounts), no key and no error text
// goes into a span or metric: a callback that wants its error on a span
// records it on its own span.
//
// # Metrics
//
// Names and units follow OpenTelemetry's conventions; the Prometheus
// exporter shows them as bizcircle_notifications_total and
// bizcircle_…_duration_seconds. Attribute values come from fixed sets, and
// the event type is used only once WeChat Pay's signature vouches for it, so
// forged requests cannot grow the number of series.
//
//   - bizcircle.notifications ({notification}), a counter of each outcome:
//     verified or rejected by the decoder, then processed, duplicate,
//     ignored, failed, rejected or stored by the dispatcher. Attributes:
//     bizcircle.outcome, bizcircle.event_type (once verified), error.type
//     (on failures).
//   - bizcircle.verify.duration (s): reading, verifying and decrypting.
//     Attributes: bizcircle.outcome, error.type.
//   - bizcircle.callback.duration (s): each callback run. Attributes:
//     bizcircle.event_type, error.type.
//   - bizcircle.dedupe.duration (s): the dispatcher's time outside the
//     callback, which is the Deduper's round trips (redisdedupe's, pgdedupe's)
//     and waits for another delivery holding the event, plus parsing the
//     event (microseconds). Attribute: bizcircle.dedupe.
//   - bizcircle.sync.attempts ({attempt}), a counter of the sync worker's
//     attempts ([InstrumentSync]). Attributes: bizcircle.sync.result,
//     error.type (on failures).
//
// Histograms advise buckets from 100µs to 10s.
package otelbizcircle
