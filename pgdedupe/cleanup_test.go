package pgdedupe_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
)

func TestDeleteExpired(t *testing.T) {
	pool := newPool(t, unique("cleanup"), 0)
	table := newTable(t, pool)
	c := newClock()
	d := newDeduper(t, pool, table, pgdedupe.WithClock(c.Now), pgdedupe.WithCleanupBatch(2))
	ctx := context.Background()
	complete := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			if ran, err := d.Do(ctx, k, func(context.Context) error { return nil }); !ran || err != nil {
				t.Fatalf("Do(%q) = (%v, %v)", k, ran, err)
			}
		}
	}
	complete("old1", "old2", "old3", "old4", "old5")
	c.Advance(time.Hour)
	complete("new1", "new2", "new3")
	c.Advance(bizcircle.DefaultTTL - time.Hour) // the old keys expire now

	n, err := d.DeleteExpired(ctx)
	if err != nil || n != 5 {
		t.Errorf("DeleteExpired = (%d, %v), want (5, nil)", n, err)
	}
	if got := count(t, pool, table); got != 3 {
		t.Errorf("%d rows left, want 3", got)
	}
	n, err = d.DeleteExpired(ctx)
	if err != nil || n != 0 {
		t.Errorf("DeleteExpired again = (%d, %v), want (0, nil)", n, err)
	}
}

// TestDeleteExpiredSkipsHeldRows runs the cleanup while a delivery holds an
// expired key it is taking over: the cleanup neither waits for it nor deletes
// its row.
func TestDeleteExpiredSkipsHeldRows(t *testing.T) {
	pool := newPool(t, unique("skip"), 0)
	table := newTable(t, pool)
	c := newClock()
	d := newDeduper(t, pool, table, pgdedupe.WithClock(c.Now))
	ctx := context.Background()
	for _, k := range []string{"held", "free"} {
		if ran, err := d.Do(ctx, k, func(context.Context) error { return nil }); !ran || err != nil {
			t.Fatalf("Do(%q) = (%v, %v)", k, ran, err)
		}
	}
	c.Advance(bizcircle.DefaultTTL)

	claimed, hang := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(hang) })
	t.Cleanup(release) // before the pool closes, even if the test fails
	done := make(chan error, 1)
	go func() {
		ran, err := d.Do(ctx, "held", func(context.Context) error {
			close(claimed)
			<-hang
			return nil
		})
		if err == nil && !ran {
			err = errors.New("the expired key did not run")
		}
		done <- err
	}()
	select {
	case <-claimed:
	case err := <-done:
		t.Fatalf("Do on the expired key returned without running fn: %v", err)
	}

	cleanupCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := d.DeleteExpired(cleanupCtx) // would fail on the timeout if it waited
	if err != nil || n != 1 {
		t.Errorf("DeleteExpired while a delivery holds a row = (%d, %v), want (1, nil)", n, err)
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("the holder's Do: %v", err)
	}
	if got := count(t, pool, table); got != 1 {
		t.Errorf("%d rows left, want the taken-over key's", got)
	}
	if ran, err := d.Do(ctx, "held", func(context.Context) error { return nil }); ran || err != nil {
		t.Errorf("Do(held) after the takeover = (%v, %v), want (false, nil)", ran, err)
	}
}

func TestBackgroundCleanup(t *testing.T) {
	pool := newPool(t, unique("loop"), 0)
	table := newTable(t, pool)
	c := newClock()
	// Runs every millisecond; the clock, not the wait, expires the key.
	d := newDeduper(t, pool, table, pgdedupe.WithClock(c.Now), pgdedupe.WithCleanupInterval(time.Millisecond))
	if ran, err := d.Do(context.Background(), "k", func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("Do = (%v, %v)", ran, err)
	}
	if got := count(t, pool, table); got != 1 {
		t.Fatalf("%d rows before expiry, want 1", got)
	}
	c.Advance(bizcircle.DefaultTTL)
	if err := poll(10*time.Second, func() bool { return count(t, pool, table) == 0 }); err != nil {
		t.Fatalf("the expired row: %v", err)
	}
	for range 2 {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestBackgroundCleanupReportsErrors(t *testing.T) {
	pool := newPool(t, unique("loop"), 0)
	errs := make(chan error, 1)
	d, err := pgdedupe.New(pool, pgdedupe.WithTable(unique("never_migrated")),
		pgdedupe.WithCleanupInterval(time.Millisecond),
		pgdedupe.WithCleanupErrorHandler(func(err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if err == nil {
			t.Error("the error handler got nil")
		}
	case <-time.After(10 * time.Second):
		t.Error("no cleanup error reported within 10s")
	}
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// poll calls cond until it holds, or gives an error after timeout.
func poll(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("still not there after %v", timeout)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	return nil
}

func TestDeleteExpiredStopsWithItsContext(t *testing.T) {
	pool := newPool(t, unique("cleanup"), 0)
	d := newDeduper(t, pool, newTable(t, pool))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := d.DeleteExpired(ctx); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteExpired with a cancelled context = (%d, %v), want (0, context.Canceled)", n, err)
	}
}
