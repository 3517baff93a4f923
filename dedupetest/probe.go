package dedupetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
)

// probe wraps callbacks to count runs and catch two running at once.
type probe struct {
	runs    atomic.Int64
	active  atomic.Int64
	overlap atomic.Bool

	mu     sync.Mutex
	starts []time.Time
}

// wrap returns a callback that records its run and then calls body.
func (p *probe) wrap(body func(ctx context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if p.active.Add(1) > 1 {
			p.overlap.Store(true)
		}
		defer p.active.Add(-1)
		p.runs.Add(1)
		p.mu.Lock()
		p.starts = append(p.starts, time.Now())
		p.mu.Unlock()
		return body(ctx)
	}
}

// ok is a callback body that succeeds.
func ok(context.Context) error { return nil }

// firstStart reports when the first run started.
func (p *probe) firstStart() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts[0]
}

// lastStart reports when the latest run started.
func (p *probe) lastStart() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts[len(p.starts)-1]
}

// check fails t if two runs overlapped or the run count is not want.
func (p *probe) check(t *testing.T, want int64) {
	t.Helper()
	if p.overlap.Load() {
		t.Error("fn ran twice at the same time for one key")
	}
	if got := p.runs.Load(); got != want {
		t.Errorf("fn ran %d times, want %d", got, want)
	}
}

// result is what one Do call returned.
type result struct {
	ran bool
	err error
}

// do calls d.Do with a bounded context.
func do(d bizcircle.Deduper, key string, wait time.Duration, fn func(context.Context) error) result {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ran, err := d.Do(ctx, key, fn)
	return result{ran, err}
}

// mustRun fails t unless Do runs fn and succeeds.
func mustRun(t *testing.T, d bizcircle.Deduper, key string, p *probe) {
	t.Helper()
	before := p.runs.Load()
	r := do(d, key, 5*time.Second, p.wrap(ok))
	if !r.ran || r.err != nil || p.runs.Load() != before+1 {
		t.Fatalf("Do(%q) on a free key = (ran %v, err %v), fn ran %d times; want (true, nil), once",
			key, r.ran, r.err, p.runs.Load()-before)
	}
}

// mustSkip fails t unless Do reports key as already processed.
func mustSkip(t *testing.T, d bizcircle.Deduper, key string, p *probe) {
	t.Helper()
	before := p.runs.Load()
	r := do(d, key, 5*time.Second, p.wrap(ok))
	if r.ran || r.err != nil || p.runs.Load() != before {
		t.Fatalf("Do(%q) on a completed key = (ran %v, err %v), fn ran %d times; want (false, nil), not run",
			key, r.ran, r.err, p.runs.Load()-before)
	}
}

// isInFlight reports whether err is the answer to an in-flight duplicate:
// ErrInFlight, or the end of a wait bounded by the caller's context.
func isInFlight(err error) bool {
	return errors.Is(err, bizcircle.ErrInFlight) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// waitFor returns when ch is closed or d passes, whichever is first. The
// suite uses it where a waiting deduper cannot signal that a duplicate has
// reached the store.
func waitFor[T any](ch <-chan T, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}
