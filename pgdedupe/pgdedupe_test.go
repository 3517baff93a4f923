package pgdedupe_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ bizcircle.Deduper = (*pgdedupe.Deduper)(nil)

func TestNewRejectsInvalidOptions(t *testing.T) {
	// pgxpool.New connects lazily, so no server is needed.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tests := []struct {
		name string
		pool *pgxpool.Pool
		opt  pgdedupe.Option
	}{
		{"a nil pool", nil, pgdedupe.WithTable("ok")},
		{"an empty table name", pool, pgdedupe.WithTable("")},
		{"an empty schema", pool, pgdedupe.WithTable(".dedupe")},
		{"three name parts", pool, pgdedupe.WithTable("a.b.c")},
		{"a name over 63 bytes", pool, pgdedupe.WithTable(strings.Repeat("x", 64))},
		{"a name that is not UTF-8", pool, pgdedupe.WithTable("dedupe\xff")},
		{"a zero TTL", pool, pgdedupe.WithTTL(0)},
		{"a negative in-flight wait", pool, pgdedupe.WithInFlightWait(-time.Second)},
		{"a nil clock", pool, pgdedupe.WithClock(nil)},
		{"a negative cleanup interval", pool, pgdedupe.WithCleanupInterval(-time.Second)},
		{"a cleanup batch of 0", pool, pgdedupe.WithCleanupBatch(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := pgdedupe.New(tt.pool, pgdedupe.WithCleanupInterval(0), tt.opt)
			if err == nil {
				d.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
	t.Run("valid options", func(t *testing.T) {
		d, err := pgdedupe.New(pool, pgdedupe.WithTable("app.dedupe"), pgdedupe.WithTTL(time.Second),
			pgdedupe.WithInFlightWait(0), pgdedupe.WithCleanupBatch(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDo(t *testing.T) {
	pool := newPool(t, unique("do"), 0)
	d := newDeduper(t, pool, newTable(t, pool))
	ctx := context.Background()

	runs := 0
	fn := func(ctx context.Context) error {
		runs++
		tx, ok := pgdedupe.Tx(ctx)
		if !ok {
			t.Error("Tx(ctx) in the callback: ok false")
			return nil
		}
		if err := tx.Commit(ctx); !errors.Is(err, pgdedupe.ErrTxOwned) {
			t.Errorf("Commit in the callback = %v, want ErrTxOwned", err)
		}
		if err := tx.Rollback(ctx); !errors.Is(err, pgdedupe.ErrTxOwned) {
			t.Errorf("Rollback in the callback = %v, want ErrTxOwned", err)
		}
		return nil
	}
	steps := []struct {
		key     string
		wantRan bool
	}{
		{"4200000001", true},
		{"4200000001", false},
		{"4200000002", true},
		{"42000000", true}, // a prefix of the others
		{"", true},
		{"", false},
		{"\x00\xff 支付", true}, // bytes text columns refuse
		{"\x00\xff 支付", false},
	}
	for _, s := range steps {
		before := runs
		ran, err := d.Do(ctx, s.key, fn)
		if err != nil || ran != s.wantRan || runs-before != map[bool]int{false: 0, true: 1}[s.wantRan] {
			t.Errorf("Do(%q) = (%v, %v), fn ran %d times; want (%v, nil)", s.key, ran, err, runs-before, s.wantRan)
		}
	}
	if _, ok := pgdedupe.Tx(ctx); ok {
		t.Error("Tx(context.Background()): ok true")
	}
}

func TestDoCanceledContext(t *testing.T) {
	pool := newPool(t, unique("cancel"), 0)
	d := newDeduper(t, pool, newTable(t, pool))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran, err := d.Do(ctx, "k", func(context.Context) error {
		t.Error("fn ran with a cancelled context")
		return nil
	})
	if ran || !errors.Is(err, context.Canceled) {
		t.Errorf("Do = (%v, %v), want (false, context.Canceled)", ran, err)
	}
}

func TestDoForgetsKeysAfterTTL(t *testing.T) {
	pool := newPool(t, unique("ttl"), 0)
	table := newTable(t, pool)
	c := newClock()
	d := newDeduper(t, pool, table, pgdedupe.WithClock(c.Now))
	ctx := context.Background()
	runs := 0
	fn := func(context.Context) error { runs++; return nil }

	steps := []struct {
		advance time.Duration
		wantRan bool
	}{
		{0, true},
		{bizcircle.DefaultTTL - time.Microsecond, false}, // counted from completion
		{time.Microsecond, true},                         // expired: taken over
		{time.Hour, false},
	}
	for i, s := range steps {
		c.Advance(s.advance)
		before := runs
		ran, err := d.Do(ctx, "k", fn)
		if err != nil || ran != s.wantRan || (runs > before) != s.wantRan {
			t.Errorf("step %d: Do = (%v, %v), fn ran %d times; want (%v, nil)", i, ran, err, runs-before, s.wantRan)
		}
	}
	if n := count(t, pool, table); n != 1 {
		t.Errorf("%d dedupe rows, want 1", n)
	}
}

// TestDoRestoresLockTimeout checks that the claim's short lock_timeout does
// not leak into the callback, where it would fail the callback's own waits.
func TestDoRestoresLockTimeout(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = "7s"
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	d := newDeduper(t, pool, newTable(t, pool), pgdedupe.WithInFlightWait(0))
	var got string
	_, err = d.Do(context.Background(), "k", func(ctx context.Context) error {
		tx, _ := pgdedupe.Tx(ctx)
		return tx.QueryRow(ctx, "SHOW lock_timeout").Scan(&got)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != "7s" {
		t.Errorf("lock_timeout in the callback = %q, want the session's 7s", got)
	}
}

// TestDoWhileHeld starts a duplicate while another delivery holds the key.
func TestDoWhileHeld(t *testing.T) {
	tests := []struct {
		name       string
		wait       time.Duration // the duplicate's in-flight wait
		ctxTimeout time.Duration // the duplicate's context's deadline; 0 for none
		cancel     bool          // cancel the duplicate's context while it waits
		holderErr  error         // what the holder's callback returns
		// wantWaiting: the duplicate finds the key in flight and waits
		// until the holder finishes; otherwise it answers while the holder
		// runs.
		wantWaiting bool
		wantRan     bool
		wantErr     []error
	}{
		{name: "holder succeeds: the duplicate waits and skips", wait: time.Minute,
			wantWaiting: true},
		{name: "holder fails: the duplicate waits and runs", wait: time.Minute,
			holderErr: errors.New("ledger down"), wantWaiting: true, wantRan: true},
		{name: "no wait: ErrInFlight at once", wait: 0,
			wantErr: []error{bizcircle.ErrInFlight}},
		{name: "short wait: ErrInFlight when it ends", wait: 50 * time.Millisecond,
			wantErr: []error{bizcircle.ErrInFlight}},
		{name: "context deadline first: ErrInFlight by then", wait: time.Minute, ctxTimeout: 200 * time.Millisecond,
			wantErr: []error{bizcircle.ErrInFlight}},
		{name: "context cancelled first: ErrInFlight and its error", wait: time.Minute, cancel: true,
			wantErr: []error{bizcircle.ErrInFlight, context.Canceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracer()
			pool := newTracedPool(t, unique("held"), 0, tr)
			table := newTable(t, pool)
			holder := newDeduper(t, pool, table)
			dup := newDeduper(t, pool, table, pgdedupe.WithInFlightWait(tt.wait))
			// waiting reports whether the duplicate found the key in flight.
			waiting := func() bool { return tr.callers("dup", func(_, busy int) bool { return busy > 0 }) > 0 }

			claimed, hang := make(chan struct{}), make(chan struct{})
			release := sync.OnceFunc(func() { close(hang) })
			t.Cleanup(release) // before the pool closes, even if the test fails
			holderDone := make(chan error, 1)
			go func() {
				_, err := holder.Do(context.Background(), "k", func(context.Context) error {
					close(claimed)
					<-hang
					return tt.holderErr
				})
				holderDone <- err
			}()
			select {
			case <-claimed:
			case err := <-holderDone:
				t.Fatalf("the holder's Do returned without running fn: %v", err)
			}

			dupDone := make(chan error, 1)
			var dupRan bool
			var dupTook time.Duration
			go func() {
				ctx, cancel := context.WithCancel(asCaller(context.Background(), "dup"))
				defer cancel()
				if tt.ctxTimeout > 0 {
					// The deadline is only reported: the context does not
					// end at it, so only Do itself can end the wait by then,
					// and a late timer on a loaded machine cannot race it.
					ctx = reportedDeadline{ctx, time.Now().Add(tt.ctxTimeout)}
				}
				if tt.cancel {
					go func() {
						if err := waitFor(ctx, "the duplicate finds the key in flight", waiting); err == nil {
							cancel()
						}
					}()
				}
				start := time.Now()
				ran, err := dup.Do(ctx, "k", func(context.Context) error { return nil })
				dupRan, dupTook = ran, time.Since(start)
				dupDone <- err
			}()
			var dupErr error
			if tt.wantWaiting {
				if err := waitFor(context.Background(), "the duplicate finds the key in flight", waiting); err != nil {
					t.Fatal(err)
				}
				release()
				dupErr = <-dupDone
			} else {
				dupErr = <-dupDone // while the holder still runs
				release()
			}
			if err := <-holderDone; !errors.Is(err, tt.holderErr) {
				t.Errorf("holder's Do: %v, want %v", err, tt.holderErr)
			}
			if dupRan != tt.wantRan {
				t.Errorf("duplicate ran = %v, want %v", dupRan, tt.wantRan)
			}
			if len(tt.wantErr) == 0 && dupErr != nil {
				t.Errorf("duplicate's Do: %v, want nil", dupErr)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(dupErr, want) {
					t.Errorf("duplicate's Do: %v, want an error matching %v", dupErr, want)
				}
			}
			// Do ends its wait itself, shortly before the deadline; the
			// bound is generous for a loaded machine, and far below the
			// minute-long in-flight wait that would apply without the
			// deadline.
			if tt.ctxTimeout > 0 && (errors.Is(dupErr, context.DeadlineExceeded) || dupTook > tt.ctxTimeout+2*time.Second) {
				t.Errorf("the duplicate's Do = %v after %v, want ErrInFlight from Do itself by its context's %v deadline",
					dupErr, dupTook, tt.ctxTimeout)
			}
		})
	}
}

// reportedDeadline is a context that reports a deadline but does not end at
// it.
type reportedDeadline struct {
	context.Context
	deadline time.Time
}

func (c reportedDeadline) Deadline() (time.Time, bool) { return c.deadline, true }
