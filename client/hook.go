package client

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/go-bizcircle/bizcircle"
)

// A Hook instruments the HTTP requests a [Client] sends to WeChat Pay, for
// tracing: package otelbizcircle's InstrumentClient is one. Add hooks with
// [WithHook]. Hooks run on the calling goroutine and must be safe for
// concurrent use.
type Hook struct {
	// Request runs around each HTTP request, once per attempt: a call that
	// [WithRetry] retries runs it once for each. It must call send once,
	// before it returns, with ctx or a ctx derived from it: the request is
	// sent with that ctx, so a span it carries is the parent of the spans
	// of the http.Client's transport. send returns the answer's HTTP
	// status (0 when no answer came back: a network error) and the
	// request's error (nil for a 2xx answer whose signature verified; a
	// *core.APIError, wrapped, for an error answer). A Request that does
	// not call send has the request sent after it returns; a second call
	// sends nothing and returns the first one's results. nil does nothing.
	Request func(ctx context.Context, r RequestInfo, send func(context.Context) (status int, err error))
}

// A RequestInfo describes one HTTP request of a [Client] call to a [Hook].
// It holds no personal data: the OpenID some paths carry is replaced.
type RequestInfo struct {
	// Operation is the Client method: "SyncPoints", "SyncParking",
	// "QueryAuthorization" or "PointsCommitStatus".
	Operation string
	// Method is the HTTP method, "GET" or "POST".
	Method string
	// URL is the request's URL, its query included, with "REDACTED" for
	// the OpenID a path carries:
	// https://api.mch.weixin.qq.com/v3/businesscircle/users/REDACTED/points/commit_status?appid=…
	URL string
	// Template is the URL's path with {openid} for the OpenID:
	// /v3/businesscircle/users/{openid}/points/commit_status.
	Template string
	// Attempt is 1 for the call's first request, 2 for its first retry.
	Attempt int
}

// WithHook adds h to the Client's hooks; they run in the order given, the
// first outermost. Default: none.
func WithHook(h Hook) Option {
	return func(c *config) { c.hooks = append(c.hooks, h) }
}

// redactedURL is the URL of a request to route, for hooks.
func (c *Client) redactedURL(route string, query url.Values) string {
	u := c.baseURL + strings.Replace(route, "{openid}", "REDACTED", 1)
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// hooked runs once, the request, inside the hooks, the first outermost.
func (c *Client) hooked(ctx context.Context, info RequestInfo, once func(context.Context) (int, bool, time.Duration, error)) (retryable bool, after time.Duration, err error) {
	send := func(ctx context.Context) (int, error) {
		var status int
		status, retryable, after, err = once(ctx)
		return status, err
	}
	for i := len(c.hooks) - 1; i >= 0; i-- {
		if h := c.hooks[i].Request; h != nil {
			inner := send
			send = func(ctx context.Context) (status int, err error) {
				sent := false
				h(ctx, info, func(ctx context.Context) (int, error) {
					if !sent {
						sent = true
						status, err = inner(ctx)
					}
					return status, err
				})
				if !sent {
					status, err = inner(ctx)
				}
				return status, err
			}
		}
	}
	send(ctx)
	return retryable, after, err
}

// A SyncHook instruments a worker that sends points syncs, for tracing and
// metrics: queue mode's sync worker runs the hooks given to
// queue.WithSyncHook, and package otelbizcircle's InstrumentSync is one.
// Every field may be nil. Hooks run on the worker's goroutine and must be
// safe for concurrent use.
type SyncHook struct {
	// Start runs when an attempt to send a sync starts. The ctx it returns
	// is the attempt's: the call to WeChat Pay ([Client.SyncPoints]) runs
	// with it, so the [Hook]'s work for that call nests under the
	// attempt's.
	Start func(ctx context.Context, j bizcircle.Job) context.Context
	// End runs when the attempt is over, with the attempt's ctx, its
	// result, and its error (nil when sent).
	End func(ctx context.Context, r SyncResult, err error)
}

// A SyncResult is what came of one attempt to send a points sync.
type SyncResult int

// Results of an attempt to send a points sync.
const (
	// SyncSent: WeChat Pay acknowledged the sync.
	SyncSent SyncResult = iota + 1
	// SyncRetried: the attempt failed (WeChat Pay answered 5xx or 429, or
	// could not be reached) and the sync is sent again later.
	SyncRetried
	// SyncRefused: the sync is never sent again: WeChat Pay refused it with
	// another 4xx, or the stored sync does not open or is not valid.
	SyncRefused
	// SyncDiscarded: the attempt failed as a retried one does, but it was
	// the last: the sync is a dead letter, to replay once its cause is
	// fixed.
	SyncDiscarded
)

var syncResultNames = [...]string{"", "sent", "retried", "refused", "discarded"}

// String returns the result's lower-case name, such as "retried".
func (r SyncResult) String() string {
	if r > 0 && int(r) < len(syncResultNames) {
		return syncResultNames[r]
	}
	return "unknown"
}
