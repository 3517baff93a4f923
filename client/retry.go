package client

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of [RetryPolicy]'s zero fields.
const (
	DefaultMaxAttempts   = 3
	DefaultBaseDelay     = 200 * time.Millisecond
	DefaultMaxDelay      = 5 * time.Second
	DefaultMaxRetryAfter = 30 * time.Second
)

// A RetryPolicy says how [WithRetry] retries a call answered 429 or 5xx, or
// failed by a network error. The n-th retry waits a random time between half
// and all of min(BaseDelay·2ⁿ⁻¹, MaxDelay) ("equal jitter"), so that many
// clients failing together do not retry together. When the answer has a
// Retry-After header (delay-seconds or an HTTP date) asking for a longer
// wait, the retry waits that long instead, up to MaxRetryAfter. Every wait
// ends early when the call's ctx ends. Other errors (4xx but 429, answers
// whose signature does not verify, ctx's error) are never retried.
type RetryPolicy struct {
	// MaxAttempts is how many times a call is tried in all, the first
	// included; 1 means no retry. Default (0): [DefaultMaxAttempts].
	MaxAttempts int
	// BaseDelay is the wait before the first retry, before jitter; it
	// doubles for each retry after. Default (0): [DefaultBaseDelay].
	BaseDelay time.Duration
	// MaxDelay caps the wait before jitter. Default (0): [DefaultMaxDelay].
	MaxDelay time.Duration
	// MaxRetryAfter caps the wait a Retry-After header asks for: a server
	// asking for an hour gets a retry after MaxRetryAfter (the call's ctx
	// usually ends first). Default (0): [DefaultMaxRetryAfter] (30 seconds).
	MaxRetryAfter time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxRetryAfter == 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	return p
}

// wait returns the wait after the given failed attempt (1 for the first),
// whose answer asked for retryAfter (0: nothing asked).
func (p *RetryPolicy) wait(attempt int, retryAfter time.Duration) time.Duration {
	return max(p.delay(attempt), min(retryAfter, p.MaxRetryAfter))
}

// delay returns the wait after the given failed attempt (1 for the first).
func (p *RetryPolicy) delay(attempt int) time.Duration {
	d := p.MaxDelay
	if shift := attempt - 1; shift < 32 && p.BaseDelay<<shift > 0 && p.BaseDelay<<shift < p.MaxDelay {
		d = p.BaseDelay << shift
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// maxRetryAfterSeconds keeps a Retry-After in seconds from overflowing a
// time.Duration.
const maxRetryAfterSeconds = int64(1<<63-1) / int64(time.Second)

// retryAfter reads a Retry-After header: delay-seconds, or an HTTP date
// (RFC 9110, section 10.2.3) compared with now. It is 0 when the header is
// missing, unreadable or in the past.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	// A number too large to parse is as good as forever: capped later.
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return time.Duration(min(max(secs, 0), maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
