// Package client calls WeChat Pay's 智慧商圈 (smart business circle) APIs
// for a mall: it syncs the points a payment earned (积分同步), asks whether a
// shopper has authorized points (授权查询) and whether they have purchases
// waiting for points (待积分状态查询), and reports cars entering and leaving
// the car park (停车状态同步).
//
// A [Client] is built on wechatpay-go's core.Client, which signs every
// request with the merchant key and verifies the signature on every answer.
// Requests are typed structs, checked before they are sent: a missing field,
// a value over its length limit or an unknown enum value fails fast with a
// [*ValidationError] naming the field. WeChat Pay's error answers come back
// as wechatpay-go's *core.APIError (find it with errors.As). Retries on 429,
// 5xx and network errors, honouring Retry-After, are off unless [WithRetry]
// turns them on; [Attempts] tells how many times a failed call was tried.
// [WithHook] instruments each HTTP request (package otelbizcircle's
// InstrumentClient traces them), and a [SyncHook] instruments a worker that
// sends points syncs (queue mode's, with queue.WithSyncHook).
//
// [PlatformVerifier] keeps the platform certificates that verify WeChat Pay's
// signatures current: on a serial it does not know, it downloads the
// certificates again (once, rate-limited) before failing, so a certificate
// rotation does not reject valid notifications for a day; it also downloads
// them every 24 hours, so a retired certificate stops verifying (Close it to
// stop that schedule). It also accepts a WeChat Pay public key
// (PUB_KEY_ID_…) beside the certificates, for merchants migrating from one to
// the other. Use it with bizcircle.VerifyAndDecrypt and as the core.Client's
// response verifier.
//
// # Example
//
// Award points in the payment callback:
//
//	api, err := client.New(coreClient, client.WithRetry(client.RetryPolicy{}))
//	...
//	cb := bizcircle.CallbackFuncs{
//		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
//			points := e.Amount / 100 // one point per yuan
//			return api.SyncPoints(ctx, client.NewSyncPointsRequest(e, points, time.Now()))
//		},
//	}
package client
