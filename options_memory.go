package bizcircle

import (
	"fmt"
	"slices"
	"time"
)

// memoryConfig is what the memory options set: the default MemoryDeduper's
// settings, or NewMemoryDeduper's.
type memoryConfig struct {
	ttl     time.Duration
	maxKeys int
	wait    time.Duration
}

// memoryOptions are the options NewMemoryDeduper takes; all but WithClock
// configure only a MemoryDeduper.
var memoryOptions = []string{"WithTTL", "WithMaxKeys", "WithInFlightWait", "WithClock"}

// memoryOnly returns the first option given that configures only the
// default MemoryDeduper, "" if none.
func (c *config) memoryOnly() string {
	for _, name := range c.given {
		if name != "WithClock" && slices.Contains(memoryOptions, name) {
			return name
		}
	}
	return ""
}

// WithTTL sets how long a [MemoryDeduper] remembers a completed key. For
// [New] and [NewHandler] it configures the default deduper, and is an error
// beside [WithDeduper] (set the TTL on that deduper instead). A value not
// above zero is an error. Default: [DefaultTTL] (25 hours, past WeChat Pay's
// 24h4m of retries).
func WithTTL(d time.Duration) Option {
	return named("WithTTL", func(c *config) {
		if d <= 0 {
			c.failDispatch("WithTTL: ttl must be positive")
			return
		}
		c.memory.ttl = d
	})
}

// WithMaxKeys bounds how many completed keys a [MemoryDeduper] remembers;
// past it the oldest is forgotten. Like [WithTTL], it configures the default
// deduper of [New] and [NewHandler]. A value below 1 is an error. Default:
// [DefaultMaxKeys].
func WithMaxKeys(n int) Option {
	return named("WithMaxKeys", func(c *config) {
		if n < 1 {
			c.failDispatch(fmt.Sprintf("WithMaxKeys: %d keys: need at least 1", n))
			return
		}
		c.memory.maxKeys = n
	})
}

// WithInFlightWait sets how long a duplicate waits, in a [MemoryDeduper],
// for a delivery of the same event that is still running before it gives
// [ErrInFlight]; 0 gives ErrInFlight at once. The wait also ends with the
// request's context. Like [WithTTL], it configures the default deduper of
// [New] and [NewHandler]. A negative value is an error. Default:
// [DefaultInFlightWait] (3 seconds).
func WithInFlightWait(d time.Duration) Option {
	return named("WithInFlightWait", func(c *config) {
		if d < 0 {
			c.failDispatch("WithInFlightWait: wait must not be negative")
			return
		}
		c.memory.wait = d
	})
}
