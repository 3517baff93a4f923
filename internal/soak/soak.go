// Package soak plays a day of WeChat Pay traffic against notification
// handlers under a simulated clock: distinct payments and refunds, each
// delivered on the real retry schedule until answered 2xx, with duplicates,
// concurrent duplicates, failing, panicking and slow callbacks, and deduper
// faults. It reports how often each event's callback succeeded, so a test
// can assert exactly once and none lost.
package soak

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// Schedule is WeChat Pay's retry schedule for payment and refund
// notifications: the waits after the first delivery and each retry.
var Schedule = []time.Duration{
	15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
	3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
}

// Config sets the traffic of one run.
type Config struct {
	Events int    // distinct events, about 70% payments and 30% refunds
	Seed   uint64 // the same seed plays the same traffic
	// NewDeduper returns the deduper of one replica; replicas share a store
	// through it (the memory deduper cannot, so use one replica with it).
	NewDeduper func(clock func() time.Time) bizcircle.Deduper
	Replicas   int // default 1
	// Fault rates, per delivery.
	CallbackErrors, CallbackPanics, SlowCallbacks, DeduperFaults float64
	Duplicates, ConcurrentDuplicates                             float64
	Workers                                                      int // deliveries in parallel; default 8
}

// Report is what a run saw.
type Report struct {
	Events     int
	Deliveries int
	Answers    map[int]int // status → count
	// Successes maps each event's key to the number of times its callback
	// returned nil: exactly once is 1 for every event.
	Successes map[string]int
	Lost      []string // events never answered 2xx after every retry
	Simulated time.Duration
}

// Check returns an error describing every event processed other than once,
// every lost event, and every answer that is neither 2xx nor retryable.
func (r Report) Check() error {
	var errs []error
	if len(r.Successes) != r.Events {
		errs = append(errs, fmt.Errorf("%d of %d events processed", len(r.Successes), r.Events))
	}
	for k, n := range r.Successes {
		if n != 1 {
			errs = append(errs, fmt.Errorf("event %s processed %d times", k, n))
		}
	}
	for _, k := range r.Lost {
		errs = append(errs, fmt.Errorf("event %s lost", k))
	}
	for code, n := range r.Answers {
		if code != http.StatusNoContent && code != http.StatusInternalServerError {
			errs = append(errs, fmt.Errorf("%d answers of status %d", n, code))
		}
	}
	return errors.Join(errs...)
}

type delivery struct {
	at      time.Duration // from the start of the day
	event   int
	attempt int // 0 for the first delivery
	extra   bool
}

type queue []delivery

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(delivery)) }
func (q *queue) Pop() any {
	old := *q
	d := old[len(old)-1]
	*q = old[:len(old)-1]
	return d
}

// Run plays one day of traffic. It is deterministic in the traffic sent,
// not in the interleaving of concurrent deliveries.
func Run(cfg Config) (Report, error) {
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	if cfg.Workers < 1 {
		cfg.Workers = 8
	}
	rnd := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	var rndMu sync.Mutex
	chance := func(p float64) bool {
		rndMu.Lock()
		defer rndMu.Unlock()
		return rnd.Float64() < p
	}

	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var clockMu sync.RWMutex
	now := start
	clock := func() time.Time { clockMu.RLock(); defer clockMu.RUnlock(); return now }

	wechat := bizcircletest.NewPlatform()
	wechat.Now = clock

	var mu sync.Mutex
	successes := map[string]int{}
	cb := bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			return act(chance, cfg, func() { mu.Lock(); successes["pay:"+e.TransactionID]++; mu.Unlock() })
		},
		Refund: func(ctx context.Context, e *bizcircle.RefundEvent) error {
			return act(chance, cfg, func() { mu.Lock(); successes["refund:"+e.RefundID]++; mu.Unlock() })
		},
	}
	replicas := make([]http.Handler, cfg.Replicas)
	for i := range replicas {
		d := &faulty{inner: cfg.NewDeduper(clock), chance: chance, rate: cfg.DeduperFaults}
		h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), cb,
			bizcircle.WithClock(clock), bizcircle.WithDeduper(d), bizcircle.WithLogger(quiet))
		if err != nil {
			return Report{}, err
		}
		replicas[i] = h
	}

	// The events, and their first deliveries spread over the day.
	events := make([]func() *bizcircletest.Message, cfg.Events)
	q := &queue{}
	for i := range events {
		pay := bizcircletest.SamplePayment()
		pay.TransactionID = fmt.Sprintf("42%026d", i)
		if rnd.Float64() < 0.7 {
			events[i] = func() *bizcircletest.Message { return wechat.Payment(pay) }
		} else {
			refund := bizcircletest.SampleRefund(pay)
			refund.RefundID = fmt.Sprintf("50%027d", i)
			events[i] = func() *bizcircletest.Message { return wechat.Refund(refund) }
		}
		heap.Push(q, delivery{at: time.Duration(rnd.Int64N(int64(24 * time.Hour))), event: i})
	}

	rep := Report{Events: cfg.Events, Answers: map[int]int{}}
	answered := make([]bool, cfg.Events)
	for q.Len() > 0 {
		// Everything due within the same simulated second goes out together.
		first := heap.Pop(q).(delivery)
		batch := []delivery{first}
		for q.Len() > 0 && (*q)[0].at < first.at.Truncate(time.Second)+time.Second {
			batch = append(batch, heap.Pop(q).(delivery))
		}
		clockMu.Lock()
		now = start.Add(first.at)
		clockMu.Unlock()

		type sent struct {
			d    delivery
			msg  *bizcircletest.Message
			code int
		}
		var jobs []*sent
		for _, d := range batch {
			// WeChat signs each delivery anew, at its own time.
			m := events[d.event]()
			copies := 1
			if chance(cfg.ConcurrentDuplicates) {
				copies = 2 + rnd.IntN(2)
			}
			for range copies {
				jobs = append(jobs, &sent{d: d, msg: m})
			}
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, cfg.Workers)
		for i, j := range jobs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				w := httptest.NewRecorder()
				replicas[i%len(replicas)].ServeHTTP(w, j.msg.Request("/notify"))
				j.code = w.Code
			})
		}
		wg.Wait()

		done := map[int]bool{}
		for _, j := range jobs {
			rep.Deliveries++
			rep.Answers[j.code]++
			if j.code/100 == 2 {
				done[j.d.event] = true
			}
		}
		for _, d := range batch {
			switch {
			case done[d.event]:
				answered[d.event] = true
				if !d.extra && chance(cfg.Duplicates) {
					// WeChat delivers a received notification again, later.
					heap.Push(q, delivery{at: d.at + time.Duration(rnd.Int64N(int64(time.Hour))), event: d.event, extra: true})
				}
			case d.extra:
				// A stray duplicate that failed is not retried by itself.
			case d.attempt < len(Schedule):
				heap.Push(q, delivery{at: d.at + Schedule[d.attempt], event: d.event, attempt: d.attempt + 1})
			}
		}
		rep.Simulated = first.at
	}
	for i, ok := range answered {
		if !ok {
			rep.Lost = append(rep.Lost, fmt.Sprint(i))
		}
	}
	rep.Successes = successes
	return rep, nil
}

// act plays one callback: it fails, panics, is slow, or succeeds.
func act(chance func(float64) bool, cfg Config, succeed func()) error {
	switch {
	case chance(cfg.CallbackErrors):
		return errors.New("points ledger unavailable")
	case chance(cfg.CallbackPanics):
		panic("callback bug")
	case chance(cfg.SlowCallbacks):
		time.Sleep(2 * time.Millisecond)
	}
	succeed()
	return nil
}

// faulty fails some calls before the store is reached, and loses some
// successful answers after it (the store completed the key, the caller
// never heard): both must be retried without a second run.
type faulty struct {
	inner  bizcircle.Deduper
	chance func(float64) bool
	rate   float64
}

func (f *faulty) Do(ctx context.Context, key string, fn func(context.Context) error) (bool, error) {
	if f.chance(f.rate / 2) {
		return false, errors.New("store unreachable")
	}
	ran, err := f.inner.Do(ctx, key, fn)
	if err == nil && f.chance(f.rate/2) {
		return ran, errors.New("store answer lost")
	}
	return ran, err
}

// quiet drops the handler's logs: the run injects thousands of failures.
var quiet = slog.New(slog.DiscardHandler)
