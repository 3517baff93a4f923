package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-bizcircle/bizcircle/internal/ctxsleep"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
)

// A Client calls the smart business circle APIs through a wechatpay-go
// core.Client, which signs the requests and verifies the answers. A Client is
// safe for concurrent use.
//
// Every method checks its request before sending it and returns a
// [*ValidationError] naming the first bad field. WeChat Pay's error answers
// are returned as *core.APIError, wrapped: use errors.As to read its
// StatusCode, Code and Message. Other errors are network errors, answers
// whose signature does not verify, and ctx's error. [Attempts] reads how
// many times the call was tried.
type Client struct {
	api     *core.Client
	baseURL string
	retry   *RetryPolicy // nil: one attempt
	sleep   func(context.Context, time.Duration) error
	hooks   []Hook
}

// New returns a Client that sends through api. Build api with
// core.NewClient and the merchant's credential and a response verifier
// (wechatpay-go's option.WithWechatPayPublicKeyAuthCipher, or
// option.WithMerchantCredential plus option.WithVerifier with a
// [PlatformVerifier]). A nil api or an invalid option is an error.
func New(api *core.Client, opts ...Option) (*Client, error) {
	if api == nil {
		return nil, errors.New("client: nil core.Client")
	}
	c := config{baseURL: consts.WechatPayAPIServer, sleep: ctxsleep.Sleep}
	for _, opt := range opts {
		opt(&c)
	}
	if c.err != nil {
		return nil, c.err
	}
	return &Client{api: api, baseURL: c.baseURL, retry: c.retry, sleep: c.sleep, hooks: c.hooks}, nil
}

// An Option configures [New].
type Option func(*config)

type config struct {
	baseURL string
	retry   *RetryPolicy
	sleep   func(context.Context, time.Duration) error
	hooks   []Hook
	err     error // the first invalid option
}

func (c *config) fail(msg string) {
	if c.err == nil {
		c.err = errors.New("client: " + msg)
	}
}

// WithBaseURL sets the scheme and host the calls go to, such as WeChat Pay's
// backup host https://api2.mch.weixin.qq.com. A URL that is not absolute
// http(s), or has a path, query or fragment, is an error from [New].
// Default: https://api.mch.weixin.qq.com.
func WithBaseURL(u string) Option {
	return func(c *config) {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" ||
			strings.Trim(p.Path, "/") != "" || p.RawQuery != "" || p.Fragment != "" {
			c.fail("WithBaseURL: want an absolute http(s) URL without a path")
			return
		}
		c.baseURL = p.Scheme + "://" + p.Host
	}
}

// WithRetry retries calls answered 429 or 5xx, and calls that failed with a
// network error, as p says; zero fields of p take their defaults, negative
// ones are an error from [New]. Retries wait with exponential backoff and
// jitter, or as long as the answer's Retry-After header asks (up to
// p.MaxRetryAfter) when that is longer, and stop when the call's ctx ends.
// [Attempts] tells how many times a failed call was tried. A retried POST may reach WeChat
// Pay twice (a network error can hide a success); syncing the same points
// or parking state again is harmless. Default: no retries.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) {
		if p.MaxAttempts < 0 || p.BaseDelay < 0 || p.MaxDelay < 0 || p.MaxRetryAfter < 0 {
			c.fail("WithRetry: negative field in RetryPolicy")
			return
		}
		p = p.withDefaults()
		c.retry = &p
	}
}

// WithSleep sets how retries wait: sleep must wait d or until ctx ends, and
// then return ctx.Err() if ctx ended. Tests use it to retry without waiting.
// A nil sleep is an error from [New]. Default: a timer that stops early when
// ctx ends.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) {
		if sleep == nil {
			c.fail("WithSleep: nil sleep")
			return
		}
		c.sleep = sleep
	}
}

// call sends one API call, retrying as the policy says, and decodes a JSON
// answer into out when out is not nil. body is nil for a GET. route is
// path with {openid} for the OpenID path holds, if any: hooks see that.
func (c *Client) call(ctx context.Context, op, method, route, path string, query url.Values, body []byte, out any) error {
	attempts := 1
	if c.retry != nil {
		attempts = c.retry.MaxAttempts
	}
	for attempt := 1; ; attempt++ {
		var retryable bool
		var after time.Duration
		var err error
		if len(c.hooks) == 0 {
			_, retryable, after, err = c.once(ctx, method, path, query, body, out)
		} else {
			info := RequestInfo{Operation: op, Method: method, URL: c.redactedURL(route, query), Template: route, Attempt: attempt}
			retryable, after, err = c.hooked(ctx, info, func(ctx context.Context) (int, bool, time.Duration, error) {
				return c.once(ctx, method, path, query, body, out)
			})
		}
		if err == nil {
			return nil
		}
		if attempt >= attempts || !retryable || ctx.Err() != nil {
			return &opError{op: op, err: err, attempts: attempt}
		}
		if serr := c.sleep(ctx, c.retry.wait(attempt, after)); serr != nil {
			return &opError{op: op, err: err, attempts: attempt, stopped: serr}
		}
	}
}

// once sends the call once and tells whether its error is worth a retry: a
// 429 or 5xx answer, or a network error (the request went out, no answer
// came back); after is the wait a retried answer's Retry-After asks for, or
// 0. status is the answer's HTTP status, 0 when none came back.
func (c *Client) once(ctx context.Context, method, path string, query url.Values, body []byte, out any) (status int, retryable bool, after time.Duration, err error) {
	var postBody any
	if body != nil {
		postBody = body
	}
	result, err := c.api.Request(ctx, method, c.baseURL+path, nil, query, postBody, consts.ApplicationJSON)
	if result != nil && result.Response != nil {
		defer result.Response.Body.Close()
		status = result.Response.StatusCode
	}
	if err != nil {
		var apiErr *core.APIError
		if errors.As(err, &apiErr) {
			if apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500 {
				return apiErr.StatusCode, true, retryAfter(apiErr.Header, time.Now()), err
			}
			return apiErr.StatusCode, false, 0, err
		}
		network := result != nil && result.Response == nil
		return status, network, 0, err
	}
	if out == nil {
		return status, false, 0, nil
	}
	if err := core.UnMarshalResponse(result.Response, out); err != nil {
		return status, false, 0, fmt.Errorf("client: malformed answer: %w", err)
	}
	return status, false, 0, nil
}

// Attempts returns how many times the [Client] call that returned err was
// tried, the first attempt included: more than 1 only with [WithRetry]. It
// is 0 when the request was refused before sending (a [*ValidationError]),
// and when err is nil or does not come from a Client method. err may be
// wrapped.
func Attempts(err error) int {
	var e *opError
	if errors.As(err, &e) {
		return e.attempts
	}
	return 0
}

// opError is the error of a call: the last attempt's error, and ctx's error
// when ctx stopped the retries.
type opError struct {
	op       string
	err      error
	attempts int
	stopped  error
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("client: " + e.op + ": ")
	b.WriteString(describe(e.err))
	if e.attempts > 1 {
		fmt.Fprintf(&b, " (attempt %d)", e.attempts)
	}
	if e.stopped != nil {
		b.WriteString("; retries stopped: " + e.stopped.Error())
	}
	return b.String()
}

func (e *opError) Unwrap() []error {
	if e.stopped != nil {
		return []error{e.err, e.stopped}
	}
	return []error{e.err}
}

// describe returns err's text, without the "client: " prefix and, for a
// *core.APIError, without the answer headers and body its own text lists.
func describe(err error) string {
	var apiErr *core.APIError
	if errors.As(err, &apiErr) {
		s := fmt.Sprintf("WeChat Pay answered %d %s", apiErr.StatusCode, apiErr.Code)
		if apiErr.Message != "" {
			s += ": " + apiErr.Message
		}
		return s
	}
	return strings.TrimPrefix(err.Error(), "client: ")
}
