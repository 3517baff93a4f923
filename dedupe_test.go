package bizcircle_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

func succeed(context.Context) error { return nil }

func TestMemoryDeduperRemembersForTheTTL(t *testing.T) {
	clock := bizcircletest.NewClock(epoch)
	d := memory(t, bizcircle.WithClock(clock.Now))
	ctx := context.Background()
	if ran, err := d.Do(ctx, "k", succeed); !ran || err != nil {
		t.Fatalf("first Do: ran=%v err=%v, want ran", ran, err)
	}
	// The whole retry window, 24h4m, and then some, stays deduplicated.
	clock.Advance(25*time.Hour - time.Nanosecond)
	if ran, err := d.Do(ctx, "k", succeed); ran || err != nil {
		t.Fatalf("Do within the TTL: ran=%v err=%v, want a duplicate", ran, err)
	}
	clock.Advance(time.Nanosecond)
	if ran, err := d.Do(ctx, "k", succeed); !ran || err != nil {
		t.Fatalf("Do after the TTL: ran=%v err=%v, want ran", ran, err)
	}
	if d.Len() != 1 {
		t.Errorf("Len = %d, want 1", d.Len())
	}
}

func TestMemoryDeduperReleasesOnErrorAndPanic(t *testing.T) {
	d := memory(t)
	ctx := context.Background()
	boom := errors.New("boom")
	if ran, err := d.Do(ctx, "k", func(context.Context) error { return boom }); !ran || !errors.Is(err, boom) {
		t.Fatalf("Do = %v, %v; want ran and boom", ran, err)
	}
	func() {
		defer func() {
			if p := recover(); p != "crash" {
				t.Fatalf("recovered %v, want the panic to propagate", p)
			}
		}()
		d.Do(ctx, "k", func(context.Context) error { panic("crash") })
	}()
	if ran, err := d.Do(ctx, "k", succeed); !ran || err != nil {
		t.Fatalf("retry: ran=%v err=%v, want ran", ran, err)
	}
	if ran, _ := d.Do(ctx, "k", succeed); ran {
		t.Fatal("ran again after success")
	}
}

func TestMemoryDeduperBound(t *testing.T) {
	clock := bizcircletest.NewClock(epoch)
	d := memory(t, bizcircle.WithMaxKeys(3), bizcircle.WithClock(clock.Now), bizcircle.WithInFlightWait(0))
	ctx := context.Background()

	// An in-flight key is never evicted, and does not count as completed.
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Do(ctx, "held", func(context.Context) error { close(started); <-release; return nil })
	}()
	<-started
	for i := range 5 {
		clock.Advance(time.Second)
		d.Do(ctx, fmt.Sprint(i), succeed)
	}
	if d.Len() != 3 {
		t.Fatalf("Len = %d, want the bound, 3", d.Len())
	}
	// Keys 0 and 1 were the oldest, and were forgotten; 2, 3, 4 remain.
	for _, key := range []string{"2", "3", "4"} {
		if ran, _ := d.Do(ctx, key, succeed); ran {
			t.Errorf("key %s ran again, want it remembered", key)
		}
	}
	if ran, err := d.Do(ctx, "held", succeed); ran || !errors.Is(err, bizcircle.ErrInFlight) {
		t.Errorf("held key: ran=%v err=%v, want ErrInFlight", ran, err)
	}
	if ran, _ := d.Do(ctx, "0", succeed); !ran {
		t.Error("evicted key 0 did not run again")
	}
	close(release)
	<-done
}

func TestMemoryDeduperInFlight(t *testing.T) {
	ctx := context.Background()
	hold := func(d *bizcircle.MemoryDeduper, result error) (release func()) {
		started, rel := make(chan struct{}), make(chan struct{})
		go d.Do(ctx, "k", func(context.Context) error { close(started); <-rel; return result })
		<-started
		return func() { close(rel) }
	}

	t.Run("a duplicate waits for a holder that succeeds", func(t *testing.T) {
		d := memory(t)
		release := hold(d, nil)
		type result struct {
			ran bool
			err error
		}
		got := make(chan result)
		go func() { ran, err := d.Do(ctx, "k", succeed); got <- result{ran, err} }()
		release()
		if r := <-got; r.ran || r.err != nil {
			t.Errorf("waiter: ran=%v err=%v, want a duplicate", r.ran, r.err)
		}
	})
	t.Run("a duplicate runs after a holder that fails", func(t *testing.T) {
		d := memory(t)
		release := hold(d, errors.New("boom"))
		got := make(chan bool)
		go func() { ran, _ := d.Do(ctx, "k", succeed); got <- ran }()
		release()
		if !<-got {
			t.Error("waiter did not run after the holder failed")
		}
	})
	t.Run("the wait ends with ctx", func(t *testing.T) {
		d := memory(t, bizcircle.WithInFlightWait(time.Hour))
		defer hold(d, nil)()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		var calls atomic.Int32
		ran, err := d.Do(cctx, "k", func(context.Context) error { calls.Add(1); return nil })
		if ran || !errors.Is(err, context.Canceled) || calls.Load() != 0 {
			t.Errorf("ran=%v err=%v calls=%d, want context.Canceled and no call", ran, err, calls.Load())
		}
	})
	t.Run("the wait ends with WithInFlightWait", func(t *testing.T) {
		d := memory(t, bizcircle.WithInFlightWait(time.Millisecond))
		defer hold(d, nil)()
		if ran, err := d.Do(ctx, "k", succeed); ran || !errors.Is(err, bizcircle.ErrInFlight) {
			t.Errorf("ran=%v err=%v, want ErrInFlight", ran, err)
		}
	})
}

func TestMemoryDeduperOneRunForManyCallers(t *testing.T) {
	d := memory(t)
	var calls atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			d.Do(context.Background(), "k", func(context.Context) error {
				calls.Add(1)
				time.Sleep(time.Millisecond)
				return nil
			})
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("fn ran %d times, want 1", calls.Load())
	}
}
