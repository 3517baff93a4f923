package bizcircle

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrInFlight is returned by a [Deduper] when another delivery of the same
// event is still being processed. The handler answers it with 500, so WeChat
// Pay retries and the retry sees the holder's outcome.
var ErrInFlight = errors.New("bizcircle: event is being processed by another delivery")

// A Deduper runs each event's callback exactly once across duplicate and
// concurrent deliveries. Implementations must be safe for concurrent use.
//
// The package provides [MemoryDeduper]; subpackages provide Redis and
// PostgreSQL ones. Every implementation should pass the conformance suite in
// package dedupetest.
type Deduper interface {
	// Do runs fn unless key was already processed successfully. ran reports whether fn ran.
	// fn's error is returned and the key is released so a retry can process it again.
	// A key held by another delivery that is still running gives ErrInFlight (or waits for it, bounded by ctx).
	// If fn panics, the key is released and the panic propagates.
	Do(ctx context.Context, key string, fn func(ctx context.Context) error) (ran bool, err error)
}

// Memory deduper defaults.
const (
	// DefaultTTL is how long a completed key is remembered: WeChat Pay's
	// retries span 24h4m, so a day and an hour covers them all.
	DefaultTTL = 25 * time.Hour
	// DefaultMaxKeys bounds a MemoryDeduper to about 100 MB of keys.
	DefaultMaxKeys = 1 << 20
	// DefaultInFlightWait is how long a concurrent duplicate waits for the
	// delivery holding its key; WeChat Pay expects an answer within 5 seconds.
	DefaultInFlightWait = 3 * time.Second
)

// MemoryDeduper is an in-process [Deduper]. It remembers completed keys for
// a TTL, holds at most a bounded number of them (evicting the oldest completed
// key first, never an in-flight one), and makes a concurrent duplicate wait
// for the holder's outcome. It sees one process only: replicas behind a load
// balancer need a shared deduper such as redisdedupe.
//
// Keys are kept as 128-bit SHA-256 fingerprints, so memory per key does not
// grow with key length. A MemoryDeduper is safe for concurrent use and starts
// no goroutines: expired keys are dropped as new ones arrive. Its zero value
// is not usable: create one with [NewMemoryDeduper].
//
// What it remembers is lost when the process restarts, and a key evicted at
// the bound is forgotten early: a retry or a replayed notification of such an
// event runs its callback again. Use a persistent deduper (redisdedupe,
// pgdedupe) where that matters, or make callbacks idempotent.
type MemoryDeduper struct {
	ttl     time.Duration
	maxKeys int
	wait    time.Duration
	now     func() time.Time

	mu      sync.Mutex
	done    map[fingerprint]int64 // completed key → expiry, unix nanoseconds
	order   fifo                  // completed keys, oldest first
	flights map[fingerprint]*flight
}

// NewMemoryDeduper returns a MemoryDeduper. It takes [WithTTL],
// [WithMaxKeys], [WithInFlightWait] and [WithClock]; any other option, or an
// invalid value, is an error. With no options it remembers up to
// [DefaultMaxKeys] keys for [DefaultTTL].
//
// [New] and [NewHandler] make one from the same options when no [WithDeduper]
// is given, so most code never calls this.
func NewMemoryDeduper(opts ...Option) (*MemoryDeduper, error) {
	c := newConfig(opts)
	for _, name := range c.given {
		if !slices.Contains(memoryOptions, name) {
			return nil, fmt.Errorf("bizcircle: NewMemoryDeduper: %s does not configure a deduper; it takes %s", name, strings.Join(memoryOptions, ", "))
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	return newMemoryDeduper(c.memory, c.now), nil
}

func newMemoryDeduper(m memoryConfig, now func() time.Time) *MemoryDeduper {
	return &MemoryDeduper{
		ttl:     m.ttl,
		maxKeys: m.maxKeys,
		wait:    m.wait,
		now:     now,
		done:    make(map[fingerprint]int64),
		flights: make(map[fingerprint]*flight),
	}
}

type fingerprint [16]byte

type flight struct {
	done chan struct{} // closed when the holder finishes
	ok   bool          // the holder succeeded; read after done is closed
}

// Do implements [Deduper].
func (m *MemoryDeduper) Do(ctx context.Context, key string, fn func(ctx context.Context) error) (ran bool, err error) {
	sum := sha256.Sum256([]byte(key))
	fp := fingerprint(sum[:16])
	f, err := m.claim(ctx, fp)
	if f == nil {
		return false, err
	}
	ok := false
	defer func() { m.finish(fp, f, ok) }()
	err = fn(ctx)
	ok = err == nil
	return true, err
}

// claim returns the new flight for fp, or nil and the reason not to run:
// nil for an already completed key, an error otherwise.
func (m *MemoryDeduper) claim(ctx context.Context, fp fingerprint) (*flight, error) {
	var timeout <-chan time.Time
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.mu.Lock()
		now := m.now().UnixNano()
		m.expire(now)
		if exp, ok := m.done[fp]; ok && exp > now {
			m.mu.Unlock()
			return nil, nil
		}
		held, busy := m.flights[fp]
		if !busy {
			f := &flight{done: make(chan struct{})}
			m.flights[fp] = f
			m.mu.Unlock()
			return f, nil
		}
		m.mu.Unlock()

		if m.wait == 0 {
			return nil, ErrInFlight
		}
		if timeout == nil {
			t := time.NewTimer(m.wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-held.done:
			if held.ok {
				return nil, nil
			}
			// The holder failed and released the key: try to claim it.
		case <-timeout:
			return nil, ErrInFlight
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrInFlight, ctx.Err())
		}
	}
}

func (m *MemoryDeduper) finish(fp fingerprint, f *flight, ok bool) {
	m.mu.Lock()
	delete(m.flights, fp)
	if ok {
		exp := m.now().Add(m.ttl).UnixNano()
		for m.order.len() >= m.maxKeys {
			m.forget(m.order.pop())
		}
		m.done[fp] = exp
		m.order.push(doneKey{fp, exp})
	}
	f.ok = ok
	close(f.done)
	m.mu.Unlock()
}

// expire drops completed keys whose TTL has passed; all keys share one TTL,
// so the oldest expire first.
func (m *MemoryDeduper) expire(now int64) {
	for m.order.len() > 0 && m.order.peek().expires <= now {
		m.forget(m.order.pop())
	}
}

func (m *MemoryDeduper) forget(k doneKey) {
	// A key that expired and completed again has a newer entry in order.
	if m.done[k.fp] == k.expires {
		delete(m.done, k.fp)
	}
}

// Len reports how many completed keys are remembered.
func (m *MemoryDeduper) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(m.now().UnixNano())
	return len(m.done)
}

type doneKey struct {
	fp      fingerprint
	expires int64
}

// fifo is a growable ring buffer of completed keys.
type fifo struct {
	buf  []doneKey
	head int
	n    int
}

func (q *fifo) len() int { return q.n }

func (q *fifo) peek() doneKey { return q.buf[q.head] }

func (q *fifo) push(k doneKey) {
	if q.n == len(q.buf) {
		grown := make([]doneKey, max(16, 2*len(q.buf)))
		copied := copy(grown, q.buf[q.head:])
		copy(grown[copied:], q.buf[:q.head])
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = k
	q.n++
}

func (q *fifo) pop() doneKey {
	k := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return k
}
