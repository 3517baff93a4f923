// Package queue is bizcircle's queue mode, on River (riverqueue.com): the
// endpoint acknowledges each notification as soon as it is stored, and
// workers process it with retries for weeks, exactly once.
//
// # Receiving
//
// [Queue.Endpoint] (or [Queue.Handler] behind [bizcircle.VerifyAndDecrypt])
// verifies the notification, keys it as the dispatcher does
// ([bizcircle.Dispatcher.EventKey]: event type plus transaction_id,
// refund_id or notification ID), inserts one River job unique by that key,
// and answers 204: 204 means "stored", reported to the observer as
// [bizcircle.OutcomeStored]. Duplicates, concurrent or later, insert
// nothing and also get 204 ([bizcircle.OutcomeDuplicate]) for as long as
// River keeps the job: 26 hours after it completes by default, past WeChat
// Pay's 24h4m of retries. A failed insert is answered 500 within 2 seconds,
// and WeChat Pay retries. No callback runs on the request's path, so a slow
// callback no longer fails WeChat Pay's 5-second deadline.
//
// Notifications that arrive while a commit is under way are stored together
// (group commit, [WithGroupCommit]): one batched insert for all of them
// (River's InsertManyTx, which reports per job whether it was a duplicate),
// a single statement that commits on its own, so a batch costs one round
// trip. Each request is answered only after the commit that holds its job.
//
// # Nothing readable at rest
//
// A job holds the request as WeChat Pay signed it ([NotificationArgs]): the
// Wechatpay-* headers and the body with the resource still encrypted. River's
// tables and UI show event types, notification IDs and event keys, never an
// OpenID or an amount. Before running anything the worker verifies the
// signature again (without the 5-minute window) and decrypts with the APIv3
// key, so a row written into River's table by someone without WeChat Pay's
// key runs no callback: it is cancelled with [ErrUnverified] and reported
// as a rejected delivery (to the observer and hooks, so OpenTelemetry sees
// it, and as a warning in the log, at most one a minute): a security
// event. A real notification under another event's key is rejected the
// same way ([ErrKeyMismatch]).
//
// # Processing
//
// After [Queue.Start], workers run the same [bizcircle.Callbacks] and
// [bizcircle.On] registrations as the other modes, with the
// [bizcircle.Notification] in the context and the job's PostgreSQL
// transaction available through [Tx]. The callback's writes and the job's
// completion (River's JobCompleteTx) commit together: exactly-once effect.
// An error, a panic, a lost connection or a stopped worker rolls the writes
// back and River retries with backoff, 25 attempts over about 20 days by
// default; then the job is discarded, listed by [Admin.Failed], and can be
// replayed with [Admin.Replay].
//
// # Points sync outbox
//
// WeChat Pay sends refund notifications only for payments whose points were
// synced. [Queue.SyncPointsTx] enqueues the sync in the callback's
// transaction ([Tx]): the points and their sync commit together, no
// connection is held across the call to WeChat Pay, and the sync outlives
// any outage of WeChat Pay's API. Modes that run callbacks on the request
// use the outbox on its own: [NewOutbox], whose [Outbox.SyncPointsTx] takes
// pgdedupe.Tx's transaction, or any of yours. With [WithPointsClient], a
// sync worker sends it with client.SyncPoints: 5xx,
// 429 and network errors are retried on River's schedule, other 4xx cancel
// the job with WeChat Pay's code and message recorded. The sync's request is
// sealed with a key derived from the APIv3 key: River's tables show only the
// transaction_id. [WithSyncHook] instruments each attempt, with the River
// job and the result: sent, retried, refused or discarded
// (otelbizcircle.InstrumentSync gives it a span and a metric).
//
// # Switching modes
//
// A mall that moves to queue mode from pgdedupe or redisdedupe sets
// [WithPriorDeduper] to the Deduper it used, for WeChat Pay's 24h4m of
// retries: events the previous mode processed are answered as duplicates
// and make no job.
//
// # Operations
//
// [Migrate] creates River's tables with River's migrations. [Admin] lists
// failed jobs and unsynced payments, replays jobs ([Admin.Replay]) and
// cancels poisoned ones ([Admin.Cancel]), with the database alone.
package queue
