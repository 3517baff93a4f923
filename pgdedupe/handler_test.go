package pgdedupe_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
)

// TestHandlerTwoReplicas delivers signed notifications through two handler
// instances, each with its own pool and Deduper on one table, as two
// replicas behind a load balancer.
func TestHandlerTwoReplicas(t *testing.T) {
	wechat := bizcircletest.NewPlatform()
	app := unique("handler")
	tr := newTracer() // the replicas' pools
	admin := newPool(t, unique("admin"), 2)
	table := newTable(t, admin)
	l := newLedger(t, admin)

	// replicas returns two handlers running payment on one table.
	replicas := func(payment func(ctx context.Context, e *bizcircle.PaymentEvent) error) []http.Handler {
		var hs []http.Handler
		for range 2 {
			d := newDeduper(t, newTracedPool(t, app, 30, tr), table, pgdedupe.WithInFlightWait(30*time.Second))
			h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(),
				bizcircle.CallbackFuncs{Payment: payment}, bizcircle.WithDeduper(d),
				bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		return hs
	}
	// serve delivers m to h as caller, for the tracer.
	serve := func(h http.Handler, m *bizcircletest.Message, caller string) int {
		w := httptest.NewRecorder()
		r := m.Request("/wechat/bizcircle")
		h.ServeHTTP(w, r.WithContext(asCaller(r.Context(), caller)))
		return w.Code
	}

	t.Run("100 concurrent deliveries award points once", func(t *testing.T) {
		pay := bizcircletest.SamplePayment()
		var runs atomic.Int64
		hs := replicas(func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			runs.Add(1)
			if err := l.award(ctx, e.TransactionID, e.Amount/100); err != nil {
				return err
			}
			// Hold the claim until duplicates on both replicas wait for
			// it.
			return waitFor(ctx, "duplicates find the event in flight", func() bool {
				return tr.callers("", func(_, busy int) bool { return busy > 0 }) >= 20
			})
		})
		m := wechat.Payment(pay)
		codes := make([]int, 100)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range codes {
			wg.Go(func() {
				<-start
				codes[i] = serve(hs[i%2], m, fmt.Sprint(i))
			})
		}
		close(start)
		wg.Wait()
		for i, code := range codes {
			if code != http.StatusNoContent {
				t.Errorf("delivery %d: status %d, want 204", i, code)
			}
		}
		if runs.Load() != 1 {
			t.Errorf("the callback ran %d times, want 1", runs.Load())
		}
		if n := l.rows(t, pay.TransactionID); n != 1 {
			t.Errorf("%d ledger rows, want 1", n)
		}
	})

	t.Run("a failed delivery awards nothing and the retry awards once", func(t *testing.T) {
		pay := bizcircletest.SamplePayment()
		var fail atomic.Bool
		fail.Store(true)
		hs := replicas(func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			if err := l.award(ctx, e.TransactionID, e.Amount/100); err != nil {
				return err
			}
			if fail.Load() {
				return errors.New("points service down")
			}
			return nil
		})
		if code := serve(hs[0], wechat.Payment(pay), ""); code != http.StatusInternalServerError {
			t.Errorf("failed delivery: status %d, want 500", code)
		}
		if n := l.rows(t, pay.TransactionID); n != 0 {
			t.Errorf("after the failed delivery: %d ledger rows, want 0", n)
		}
		fail.Store(false)
		for i, h := range []http.Handler{hs[1], hs[0]} { // WeChat Pay's retries, a new notification each
			if code := serve(h, wechat.Payment(pay), ""); code != http.StatusNoContent {
				t.Errorf("retry %d: status %d, want 204", i+1, code)
			}
		}
		if n := l.rows(t, pay.TransactionID); n != 1 {
			t.Errorf("after the retries: %d ledger rows, want 1", n)
		}
	})
}
