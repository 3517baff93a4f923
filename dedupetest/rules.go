package dedupetest

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
)

// rules are the suite's subtests, in the order [Run] runs them.
var rules = []struct {
	name string
	test func(t *testing.T, s *suite)
}{
	{"a fresh key runs fn and a completed key does not", testFreshAndCompleted},
	{"fn runs once for 100 concurrent callers", testConcurrentCallers},
	{"an error from fn is returned and releases the key", testError},
	{"a panic in fn releases the key and propagates", testPanic},
	{"a completed key stays completed for its TTL and then expires", testTTL},
	{"a cancelled context does not run fn", testCancelled},
	{"an in-flight duplicate gets ErrInFlight or the holder's outcome", testInFlight},
	{"an in-flight duplicate's wait ends with its context", testInFlightBounded},
	{"a slow callback keeps its claim past the lease", testSlowCallback},
	{"a lost lease lets the next caller run fn", testLostLease},
	{"different keys are independent", testKeys},
	{"replicas share completed and released keys", testReplicas},
}

// errCallback is the error the suite's failing callbacks return.
var errCallback = errors.New("dedupetest: callback failed")

func testFreshAndCompleted(t *testing.T, s *suite) {
	d, _ := s.one(t)
	const key = "4200000001"
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "caller's value")
	var p probe
	var seen any
	ran, err := d.Do(ctx, key, p.wrap(func(ctx context.Context) error {
		seen = ctx.Value(ctxKey{})
		return nil
	}))
	if !ran || err != nil {
		t.Fatalf("Do on a fresh key = (ran %v, err %v), want (true, nil)", ran, err)
	}
	if seen != "caller's value" {
		t.Errorf("fn's context carries %v, want the caller's values", seen)
	}
	mustSkip(t, d, key, &p)
	mustSkip(t, d, key, &p)
	p.check(t, 1)
}

func testConcurrentCallers(t *testing.T, s *suite) {
	const n = 100
	const key = "4200000002"
	ds := s.replicas(t, s.config(t), 2)
	var p probe
	// fn holds the key until every other caller has returned, or for a
	// moment if they wait for it.
	others := make(chan struct{})
	fn := p.wrap(func(context.Context) error {
		waitFor(others, 200*time.Millisecond)
		return nil
	})
	var returned atomic.Int64
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = do(ds[i%2], key, 5*time.Second, fn)
			if returned.Add(1) == n-1 {
				close(others)
			}
		})
	}
	close(start)
	wg.Wait()
	runs := 0
	for i, r := range results {
		switch {
		case r.ran && r.err == nil:
			runs++
		case !r.ran && (r.err == nil || errors.Is(r.err, bizcircle.ErrInFlight)):
		default:
			t.Errorf("caller %d: Do = (ran %v, err %v), want (true, nil) once, else (false, nil) or ErrInFlight", i, r.ran, r.err)
		}
	}
	if runs != 1 {
		t.Errorf("%d callers report running fn, want 1", runs)
	}
	p.check(t, 1)
	mustSkip(t, ds[0], key, &p)
	mustSkip(t, ds[1], key, &p)
}

func testError(t *testing.T, s *suite) {
	d, _ := s.one(t)
	const key = "4200000003"
	var p probe
	r := do(d, key, 5*time.Second, p.wrap(func(context.Context) error {
		return fmt.Errorf("award points: %w", errCallback)
	}))
	if !r.ran || !errors.Is(r.err, errCallback) {
		t.Fatalf("Do with a failing fn = (ran %v, err %v), want (true, an error wrapping %q)", r.ran, r.err, errCallback)
	}
	// The retry processes the event.
	mustRun(t, d, key, &p)
	mustSkip(t, d, key, &p)
	p.check(t, 2)
}

func testPanic(t *testing.T, s *suite) {
	d, _ := s.one(t)
	const key = "4200000004"
	var p probe
	boom := &struct{ msg string }{"dedupetest: callback panicked"}
	var recovered any
	returned := false
	func() {
		defer func() { recovered = recover() }()
		_, _ = d.Do(context.Background(), key, p.wrap(func(context.Context) error { panic(boom) }))
		returned = true
	}()
	if returned {
		t.Fatal("Do returned after fn panicked; want the panic to propagate")
	}
	if recovered != boom {
		t.Fatalf("recovered %v, want fn's panic value", recovered)
	}
	// The key was released: the retry processes the event.
	mustRun(t, d, key, &p)
	mustSkip(t, d, key, &p)
	p.check(t, 2)
}

func testTTL(t *testing.T, s *suite) {
	cfg := s.config(t)
	cfg.TTL = shortTTL
	d := s.replicas(t, cfg, 1)[0]
	const key = "4200000005"
	var p probe
	var fnEnd time.Time
	r := do(d, key, 5*time.Second, p.wrap(func(context.Context) error {
		fnEnd = time.Now()
		return nil
	}))
	if !r.ran || r.err != nil {
		t.Fatalf("Do on a fresh key = (ran %v, err %v), want (true, nil)", r.ran, r.err)
	}
	// The mark is made after fn returns, so it lasts at least until
	// fnEnd+TTL; allow a tenth of the TTL for clock granularity.
	earliest := fnEnd.Add(cfg.TTL - cfg.TTL/10)
	deadline := fnEnd.Add(2*cfg.TTL + 2*time.Second)
	remembered := 0
	for {
		r := do(d, key, 5*time.Second, p.wrap(ok))
		if r.err != nil {
			t.Fatalf("Do on a completed key: %v", r.err)
		}
		if r.ran {
			if start := p.lastStart(); start.Before(earliest) {
				t.Fatalf("the completed key was forgotten %v after completion, before its TTL of %v", start.Sub(fnEnd), cfg.TTL)
			}
			break
		}
		remembered++
		if time.Now().After(deadline) {
			t.Fatalf("the completed key is still remembered %v after completion; its TTL is %v", time.Since(fnEnd), cfg.TTL)
		}
		time.Sleep(cfg.TTL / 20) // poll interval
	}
	if remembered == 0 {
		t.Fatalf("no Do call reached the key within its TTL of %v; the suite cannot check it", cfg.TTL)
	}
	// Processed again, the key is completed again.
	mustSkip(t, d, key, &p)
	p.check(t, 2)
}

func testCancelled(t *testing.T, s *suite) {
	d, _ := s.one(t)
	const key = "4200000006"
	var p probe
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran, err := d.Do(ctx, key, p.wrap(ok))
	if ran || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with a cancelled context = (ran %v, err %v), want (false, context.Canceled)", ran, err)
	}
	p.check(t, 0)
	// The cancelled call claimed nothing.
	mustRun(t, d, key, &p)
	if ran, _ := d.Do(ctx, key, p.wrap(ok)); ran {
		t.Error("Do with a cancelled context ran fn on a completed key")
	}
	p.check(t, 1)
}

func testInFlight(t *testing.T, s *suite) {
	for _, tc := range []struct {
		name      string
		holderErr error
	}{
		{"the holder succeeds", nil},
		{"the holder fails", errCallback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const key = "4200000007"
			ds := s.replicas(t, s.config(t), 2)
			var p probe
			h := hold(t, ds[0], key, &p, tc.holderErr)

			dup := make(chan result, 1)
			go func() { dup <- do(ds[1], key, 5*time.Second, p.wrap(ok)) }()
			// A deduper that answers ErrInFlight returns at once; one that
			// waits for the holder is still waiting when the holder ends.
			var dr result
			early := false
			select {
			case dr = <-dup:
				early = true
			case <-time.After(100 * time.Millisecond):
			}
			hr := h.finish(t)
			if !early {
				dr = receive(t, dup, "the duplicate")
			}

			if !hr.ran || !errors.Is(hr.err, tc.holderErr) || (tc.holderErr == nil && hr.err != nil) {
				t.Errorf("holder's Do = (ran %v, err %v), want (true, %v)", hr.ran, hr.err, tc.holderErr)
			}
			switch {
			case !dr.ran && errors.Is(dr.err, bizcircle.ErrInFlight):
				// Answered ErrInFlight, at once or after waiting.
			case early:
				t.Errorf("duplicate's Do returned (ran %v, err %v) while the holder still ran; want ErrInFlight", dr.ran, dr.err)
			case tc.holderErr == nil && !dr.ran && dr.err == nil:
				// Waited and saw the holder's success.
			case tc.holderErr != nil && dr.ran && dr.err == nil:
				// Waited, then processed the released key itself.
			default:
				t.Errorf("duplicate's Do = (ran %v, err %v); want ErrInFlight, or the holder's outcome", dr.ran, dr.err)
			}
			runs := int64(1)
			if dr.ran {
				runs++
			}
			p.check(t, runs)

			switch {
			case tc.holderErr == nil || dr.ran:
				mustSkip(t, ds[0], key, &p)
				mustSkip(t, ds[1], key, &p)
			default:
				mustRun(t, ds[1], key, &p)
				mustSkip(t, ds[0], key, &p)
			}
		})
	}
}

func testInFlightBounded(t *testing.T, s *suite) {
	const key = "4200000008"
	ds := s.replicas(t, s.config(t), 2)
	var p probe
	h := hold(t, ds[0], key, &p, nil)
	const wait = 150 * time.Millisecond
	start := time.Now()
	r := do(ds[1], key, wait, p.wrap(ok))
	elapsed := time.Since(start)
	if r.ran || !isInFlight(r.err) {
		t.Errorf("duplicate's Do = (ran %v, err %v), want ErrInFlight or its context's error", r.ran, r.err)
	}
	if elapsed > wait+2*time.Second {
		t.Errorf("duplicate's Do took %v with a %v context", elapsed, wait)
	}
	if hr := h.finish(t); !hr.ran || hr.err != nil {
		t.Errorf("holder's Do = (ran %v, err %v), want (true, nil)", hr.ran, hr.err)
	}
	p.check(t, 1)
	mustSkip(t, ds[1], key, &p)
}

func testSlowCallback(t *testing.T, s *suite) {
	const key = "4200000009"
	cfg := s.config(t)
	ds := s.replicas(t, cfg, 2)
	var p probe
	var fnDone atomic.Bool
	started := make(chan struct{})
	holder := make(chan result, 1)
	go func() {
		holder <- do(ds[0], key, 30*time.Second, p.wrap(func(context.Context) error {
			close(started)
			time.Sleep(3 * cfg.Lease) // the slow callback under test
			fnDone.Store(true)
			return nil
		}))
	}()
	select {
	case <-started:
	case r := <-holder:
		t.Fatalf("Do on a fresh key = (ran %v, err %v) without running fn", r.ran, r.err)
	}
	for polls := 0; ; polls++ {
		select {
		case hr := <-holder:
			if !hr.ran || hr.err != nil {
				t.Fatalf("slow holder's Do = (ran %v, err %v), want (true, nil)", hr.ran, hr.err)
			}
			if polls == 0 {
				t.Fatal("no duplicate reached the key while the slow holder ran")
			}
			p.check(t, 1)
			mustSkip(t, ds[1], key, &p)
			return
		default:
		}
		r := do(ds[1], key, cfg.Lease/2, p.wrap(ok))
		switch {
		case r.ran:
			t.Fatalf("a duplicate ran fn %v into a slow callback with a %v lease; want the holder's claim kept", p.lastStart().Sub(p.firstStart()), cfg.Lease)
		case r.err == nil && !fnDone.Load():
			t.Fatal("a duplicate reported the key processed while the holder still ran")
		case r.err != nil && !isInFlight(r.err):
			t.Fatalf("duplicate's Do: %v, want ErrInFlight", r.err)
		}
		time.Sleep(cfg.Lease / 6) // poll interval
	}
}

func testLostLease(t *testing.T, s *suite) {
	if s.h.Crash == nil {
		t.Skip("Harness.Crash is nil: the implementation has no leases to lose")
	}
	const key = "4200000010"
	cfg := s.config(t)
	ds := s.replicas(t, cfg, 2)
	crashedAt := time.Now()
	s.h.Crash(t, cfg, ds[0], key)
	var p probe
	// Claims only ever extend the lease, so it lasts until crashedAt+Lease.
	earliest := crashedAt.Add(cfg.Lease - cfg.Lease/10)
	deadline := crashedAt.Add(cfg.Lease + 3*time.Second)
	for {
		r := do(ds[1], key, cfg.Lease/2, p.wrap(ok))
		if r.ran {
			if r.err != nil {
				t.Fatalf("Do after the lease lapsed = (true, %v), want (true, nil)", r.err)
			}
			if start := p.lastStart(); start.Before(earliest) {
				t.Fatalf("fn ran %v after the crash, within the crashed holder's %v lease", start.Sub(crashedAt), cfg.Lease)
			}
			break
		}
		if !isInFlight(r.err) {
			t.Fatalf("Do while a crashed holder's lease lasts = (false, %v), want ErrInFlight", r.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the crashed holder's claim still blocks the key %v after the crash; the lease is %v", time.Since(crashedAt), cfg.Lease)
		}
		time.Sleep(cfg.Lease / 10) // poll interval
	}
	mustSkip(t, ds[0], key, &p)
	mustSkip(t, ds[1], key, &p)
	p.check(t, 1)
}

func testKeys(t *testing.T, s *suite) {
	d, _ := s.one(t)
	keys := []string{
		"a:", "a:b", "ab", "A", "a*", "a?", "[a]", " a", "a ", "a\nb", `a"b'`,
		"商圈事件", "c7d5b540-95d9-5bff-8494-be7984ad08e6", strings.Repeat("k", 1000),
	}
	var held, others probe
	// One key in flight does not block the others.
	h := hold(t, d, "a", &held, errCallback)
	for _, k := range keys {
		mustRun(t, d, k, &others)
	}
	for _, k := range keys {
		mustSkip(t, d, k, &others)
	}
	// Its failure releases it and leaves the others completed.
	if r := h.finish(t); !r.ran || !errors.Is(r.err, errCallback) {
		t.Fatalf("holder's Do = (ran %v, err %v), want (true, %v)", r.ran, r.err, errCallback)
	}
	for _, k := range keys {
		mustSkip(t, d, k, &others)
	}
	mustRun(t, d, "a", &held)
	others.check(t, int64(len(keys)))
	held.check(t, 2)

	// Many keys at once, ten callers each: each key's fn runs once.
	probes := make([]probe, 10)
	var wg sync.WaitGroup
	for i := range probes {
		for range 10 {
			wg.Go(func() {
				r := do(d, fmt.Sprintf("parallel-%d", i), 5*time.Second, probes[i].wrap(ok))
				if r.err != nil && !errors.Is(r.err, bizcircle.ErrInFlight) {
					t.Errorf("Do(parallel-%d): %v", i, r.err)
				}
			})
		}
	}
	wg.Wait()
	for i := range probes {
		mustSkip(t, d, fmt.Sprintf("parallel-%d", i), &probes[i])
		probes[i].check(t, 1)
	}
}

func testReplicas(t *testing.T, s *suite) {
	if !s.h.Shared {
		t.Skip("Harness.Shared is false: the implementation has no replicas")
	}
	const key = "4200000011"
	ds := s.replicas(t, s.config(t), 2)
	var p probe
	r := do(ds[0], key, 5*time.Second, p.wrap(func(context.Context) error { return errCallback }))
	if !r.ran || !errors.Is(r.err, errCallback) {
		t.Fatalf("Do with a failing fn = (ran %v, err %v), want (true, %v)", r.ran, r.err, errCallback)
	}
	mustRun(t, ds[1], key, &p)
	mustSkip(t, ds[0], key, &p)
	p.check(t, 2)
}

// held is a Do call whose fn waits to be finished.
type held struct {
	release chan struct{}
	result  chan result
}

// hold starts Do(key) on d with a fn that returns fnErr once finished, and
// returns when fn is running.
func hold(t *testing.T, d bizcircle.Deduper, key string, p *probe, fnErr error) *held {
	t.Helper()
	h := &held{release: make(chan struct{}), result: make(chan result, 1)}
	started := make(chan struct{})
	go func() {
		h.result <- do(d, key, 30*time.Second, p.wrap(func(context.Context) error {
			close(started)
			<-h.release
			return fnErr
		}))
	}()
	// Registered first, so a failure below still lets the holder return.
	t.Cleanup(func() { h.finish(t) })
	select {
	case <-started:
	case r := <-h.result:
		h.result <- r // for the cleanup's finish
		t.Fatalf("Do on a fresh key = (ran %v, err %v) without running fn", r.ran, r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("Do on a fresh key did not run fn within 5s")
	}
	return h
}

// finish lets the held fn return and returns Do's result; it is idempotent.
func (h *held) finish(t *testing.T) result {
	t.Helper()
	select {
	case <-h.release:
	default:
		close(h.release)
	}
	r := receive(t, h.result, "the holder")
	h.result <- r
	return r
}

// receive returns the next result from ch, failing t after 10 seconds.
func receive(t *testing.T, ch chan result, who string) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s's Do did not return within 10s", who)
		return result{}
	}
}
