package pgdedupe_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
)

// TestDuplicatesDoNotStarveThePool is issue 13's item 10: with a pool of 4
// (pgxpool's default on a small machine), one slow callback and six
// concurrent duplicates of its event must not keep an unrelated event
// waiting for a connection.
func TestDuplicatesDoNotStarveThePool(t *testing.T) {
	tr := newTracer()
	pool := newTracedPool(t, unique("starve"), 4, tr)
	d := newDeduper(t, pool, newTable(t, pool)) // the default in-flight wait, 3s
	var slowRuns atomic.Int64
	claimed, release := make(chan struct{}), make(chan struct{})
	releaseHolder := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseHolder) // before the pool closes, even if the test fails
	holder := make(chan error, 1)
	go func() {
		_, err := d.Do(context.Background(), "slow", func(context.Context) error {
			slowRuns.Add(1)
			close(claimed)
			// An 8-second callback, cut short once the unrelated event is
			// through.
			select {
			case <-release:
			case <-time.After(8 * time.Second):
			}
			return nil
		})
		holder <- err
	}()
	select {
	case <-claimed:
	case err := <-holder:
		t.Fatalf("the slow holder's Do returned without running fn: %v", err)
	}

	const duplicates = 6
	dups := make(chan result, duplicates)
	for i := range duplicates {
		go func() {
			// WeChat Pay hangs up after 5 seconds.
			ctx, cancel := context.WithTimeout(asCaller(context.Background(), fmt.Sprint("dup", i)), 5*time.Second)
			defer cancel()
			ran, err := d.Do(ctx, "slow", func(context.Context) error { slowRuns.Add(1); return nil })
			dups <- result{ran, err}
		}()
	}
	err := waitFor(context.Background(), "every duplicate asks the pool for a connection", func() bool {
		return tr.callers("dup", func(acquires, _ int) bool { return acquires > 0 }) == duplicates
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	ran, err := d.Do(ctx, "unrelated", func(context.Context) error { return nil })
	elapsed := time.Since(start)
	releaseHolder()
	t.Logf("the unrelated event took %v", elapsed)
	if !ran || err != nil {
		t.Errorf("the unrelated event: Do = (%v, %v) after %v, want (true, nil)", ran, err, elapsed)
	}
	if elapsed > time.Second {
		t.Errorf("the unrelated event took %v while the slow one and its duplicates were in flight, want well under 2s", elapsed)
	}

	if err := <-holder; err != nil {
		t.Errorf("the slow holder's Do: %v", err)
	}
	for range duplicates {
		r := <-dups
		if r.ran || (r.err != nil && !errors.Is(r.err, bizcircle.ErrInFlight)) {
			t.Errorf("a duplicate's Do = (%v, %v), want (false, nil) or ErrInFlight", r.ran, r.err)
		}
	}
	if n := slowRuns.Load(); n != 1 {
		t.Errorf("the slow event's callback ran %d times, want 1", n)
	}
}

type result struct {
	ran bool
	err error
}

// TestDoWaitsForAConnectionAtMostTheInFlightWait fills a pool of one with a
// slow callback: another delivery, of the same event or of another, gives
// ErrInFlight once the in-flight wait is over, not when its context ends.
func TestDoWaitsForAConnectionAtMostTheInFlightWait(t *testing.T) {
	const wait = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		key  string
	}{
		{"a duplicate of the held event", "held"},
		{"another event", "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t, unique("conn"), 1)
			d := newDeduper(t, pool, newTable(t, pool), pgdedupe.WithInFlightWait(wait))
			claimed, release := make(chan struct{}), make(chan struct{})
			releaseHolder := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseHolder)
			holder := make(chan error, 1)
			go func() {
				_, err := d.Do(context.Background(), "held", func(context.Context) error {
					close(claimed)
					<-release
					return nil
				})
				holder <- err
			}()
			select {
			case <-claimed:
			case err := <-holder:
				t.Fatalf("the holder's Do returned without running fn: %v", err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			ran, err := d.Do(ctx, tc.key, func(context.Context) error { return nil })
			elapsed := time.Since(start)
			releaseHolder()
			if ran || !errors.Is(err, bizcircle.ErrInFlight) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Do with no free connection = (%v, %v), want (false, ErrInFlight) before its context ends", ran, err)
			}
			// Generous for a loaded machine; the context would end after 10s.
			if elapsed > wait+2*time.Second {
				t.Errorf("Do waited %v for a connection, want about the in-flight wait of %v", elapsed, wait)
			}
			if err := <-holder; err != nil {
				t.Errorf("the holder's Do: %v", err)
			}
		})
	}
}

// TestCompletedDuplicateIsOneLookup: WeChat Pay's retries of a processed
// event are the common duplicates; each is answered by one short statement,
// with no transaction to hold a connection.
func TestCompletedDuplicateIsOneLookup(t *testing.T) {
	tr := newTracer()
	pool := newTracedPool(t, unique("lookup"), 0, tr)
	d := newDeduper(t, pool, newTable(t, pool))
	ctx := context.Background()
	if ran, err := d.Do(ctx, "4200000001", func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("Do = (%v, %v), want (true, nil)", ran, err)
	}
	ran, err := d.Do(asCaller(ctx, "dup"), "4200000001", func(context.Context) error { return nil })
	if ran || err != nil {
		t.Fatalf("duplicate's Do = (%v, %v), want (false, nil)", ran, err)
	}
	got := tr.statements("dup")
	if len(got) != 1 || !strings.HasPrefix(got[0], "SELECT") {
		t.Errorf("the duplicate sent %q, want one SELECT", got)
	}
}
