package redisdedupe_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/redis/go-redis/v9"
)

// ledger counts callback runs per transaction.
type ledger struct {
	mu   sync.Mutex
	runs map[string]int
}

func (l *ledger) add(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runs == nil {
		l.runs = make(map[string]int)
	}
	l.runs[id]++
}

func (l *ledger) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runs[id]
}

func (l *ledger) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.runs {
		n += r
	}
	return n
}

// newServer starts an HTTP server running payment behind the whole
// notification endpoint, deduplicated by a redisdedupe.Deduper on c.
func newServer(t *testing.T, wechat *bizcircletest.Platform, c redis.UniversalClient, prefix string,
	payment func(ctx context.Context, e *bizcircle.PaymentEvent) error) *httptest.Server {
	t.Helper()
	h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(),
		bizcircle.CallbackFuncs{Payment: payment},
		bizcircle.WithDeduper(newDeduper(t, c, redisdedupe.WithPrefix(prefix))),
		bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// fastRetries is WeChat Pay's retry behaviour on a test's time scale: n
// retries, each after d.
func fastRetries(n int, d time.Duration) []time.Duration {
	return slices.Repeat([]time.Duration{d}, n)
}

// checkAttempts fails t unless every attempt was answered 204 or a
// retryable 500, and the last one 204.
func checkAttempts(t *testing.T, who string, attempts []bizcircletest.Attempt, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: not acknowledged after %d attempts: %v", who, len(attempts), err)
	}
	for _, a := range attempts {
		if a.Err != nil || (a.Status != http.StatusNoContent && a.Status != http.StatusInternalServerError) {
			t.Errorf("%s: attempt %d answered %d %s (%v), want 204 or 500", who, a.N, a.Status, a.Body, a.Err)
		}
	}
}

func TestReplicas(t *testing.T) {
	wechat := bizcircletest.NewPlatform()
	prefix := testPrefix(t, newClient(t))
	var l ledger
	// Payments whose ID is in hold wait for hold's channel, or 20 seconds.
	var hold sync.Map
	payment := func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		l.add(e.TransactionID)
		if ch, ok := hold.Load(e.TransactionID); ok {
			select {
			case <-ch.(chan struct{}):
			case <-time.After(20 * time.Second):
			}
		}
		return nil
	}
	// Two replicas, each with its own Redis client, sharing one Redis.
	servers := []*httptest.Server{
		newServer(t, wechat, newClient(t), prefix, payment),
		newServer(t, wechat, newClient(t), prefix, payment),
	}
	deliverer := func(onAttempt func(bizcircletest.Attempt)) *bizcircletest.Deliverer {
		return &bizcircletest.Deliverer{Platform: wechat, Schedule: fastRetries(100, 20*time.Millisecond), OnAttempt: onAttempt}
	}

	t.Run("one notification delivered 100 times at once runs once", func(t *testing.T) {
		const n = 100
		pay := bizcircletest.SamplePayment()
		pay.TransactionID = "4200000100"
		m := wechat.Payment(pay)
		// The callback holds the claim until every first delivery has
		// been answered, so they all overlap it.
		answered := make(chan struct{})
		hold.Store(pay.TransactionID, answered)
		var firsts, inFlight atomic.Int64
		d := deliverer(func(a bizcircletest.Attempt) {
			if a.N != 1 {
				return
			}
			if a.Status == http.StatusInternalServerError {
				inFlight.Add(1)
			}
			if firsts.Add(1) == n-1 {
				close(answered)
			}
		})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				attempts, err := d.DeliverURL(context.Background(), servers[i%2].URL, m)
				checkAttempts(t, fmt.Sprintf("delivery %d", i), attempts, err)
			})
		}
		close(start)
		wg.Wait()
		if got := l.count(pay.TransactionID); got != 1 {
			t.Errorf("the callback ran %d times, want 1", got)
		}
		if got := inFlight.Load(); got != n-1 {
			t.Errorf("%d first deliveries were answered 500 while the callback ran, want %d", got, n-1)
		}
	})

	t.Run("many notifications delivered to both replicas each run once", func(t *testing.T) {
		const notifications, deliveries = 20, 10
		d := deliverer(nil)
		var wg sync.WaitGroup
		for i := range notifications {
			pay := bizcircletest.SamplePayment()
			pay.TransactionID = fmt.Sprintf("42000002%02d", i)
			m := wechat.Payment(pay)
			for j := range deliveries {
				wg.Go(func() {
					attempts, err := d.DeliverURL(context.Background(), servers[j%2].URL, m)
					checkAttempts(t, pay.TransactionID, attempts, err)
				})
			}
		}
		wg.Wait()
		for i := range notifications {
			if id := fmt.Sprintf("42000002%02d", i); l.count(id) != 1 {
				t.Errorf("transaction %s: the callback ran %d times, want 1", id, l.count(id))
			}
		}
	})
}
