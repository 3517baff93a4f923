package client

import (
	"math/rand/v2"
	"time"
)

// Defaults of [RetryPolicy]'s zero fields.
const (
	DefaultMaxAttempts = 3
	DefaultBaseDelay   = 200 * time.Millisecond
	DefaultMaxDelay    = 5 * time.Second
)

// A RetryPolicy says how [WithRetry] retries a call answered 429 or 5xx, or
// failed by a network error. The n-th retry waits a random time between half
// and all of min(BaseDelay·2ⁿ⁻¹, MaxDelay) ("equal jitter"), so that many
// clients failing together do not retry together. Other errors (4xx but 429,
// answers whose signature does not verify, ctx's error) are never retried.
type RetryPolicy struct {
	// MaxAttempts is how many times a call is tried in all, the first
	// included; 1 means no retry. Default (0): [DefaultMaxAttempts].
	MaxAttempts int
	// BaseDelay is the wait before the first retry, before jitter; it
	// doubles for each retry after. Default (0): [DefaultBaseDelay].
	BaseDelay time.Duration
	// MaxDelay caps the wait before jitter. Default (0): [DefaultMaxDelay].
	MaxDelay time.Duration
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
	return p
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
