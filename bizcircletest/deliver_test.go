package bizcircletest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// deliverTestLogger keeps the kit's logs of expected failures out of test output.
var deliverTestLogger = slog.New(slog.DiscardHandler)

// offsets are WeChat Pay's attempt times after the first delivery.
var offsets = []time.Duration{
	0,
	15 * time.Second,
	30 * time.Second,
	time.Minute,
	4 * time.Minute,
	14 * time.Minute,
	34 * time.Minute,
	64 * time.Minute,
	94 * time.Minute,
	124 * time.Minute,
	184 * time.Minute,
	6*time.Hour + 4*time.Minute,
	9*time.Hour + 4*time.Minute,
	12*time.Hour + 4*time.Minute,
	18*time.Hour + 4*time.Minute,
	24*time.Hour + 4*time.Minute,
}

func TestRetryScheduleSpansOneDayAndFourMinutes(t *testing.T) {
	s := bizcircletest.RetrySchedule()
	if len(s) != 15 {
		t.Fatalf("len(RetrySchedule()) = %d, want 15", len(s))
	}
	var total time.Duration
	for _, d := range s {
		total += d
	}
	if want := 24*time.Hour + 4*time.Minute; total != want {
		t.Errorf("total = %v, want %v", total, want)
	}
	s[0] = 0
	if bizcircletest.RetrySchedule()[0] != 15*time.Second {
		t.Error("RetrySchedule returned a shared slice")
	}
}

// failing answers 500 to its first n requests, then 204.
func failing(n int) (http.Handler, *atomic.Int32) {
	var calls atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= int32(n) {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), &calls
}

func TestDeliverStopsAtTheFirstSuccess(t *testing.T) {
	for _, n := range []int{0, 1, 3, 8, 15} {
		t.Run(fmt.Sprintf("a handler failing %d times gets %d attempts", n, n+1), func(t *testing.T) {
			clock := bizcircletest.NewClock(time.Unix(1_700_000_000, 0))
			p := bizcircletest.NewPlatform()
			p.Now = clock.Now
			h, calls := failing(n)
			var reported []int
			d := &bizcircletest.Deliverer{
				Platform:  p,
				Sleep:     clock.Sleep,
				OnAttempt: func(a bizcircletest.Attempt) { reported = append(reported, a.N) },
			}
			attempts, err := d.Deliver(t.Context(), h, p.Payment(bizcircletest.SamplePayment()))
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if len(attempts) != n+1 || int(calls.Load()) != n+1 {
				t.Fatalf("%d attempts, %d requests; want %d", len(attempts), calls.Load(), n+1)
			}
			for i, a := range attempts {
				if a.N != i+1 || a.Offset != offsets[i] {
					t.Errorf("attempt %d: N = %d, Offset = %v; want %d, %v", i, a.N, a.Offset, i+1, offsets[i])
				}
				if wantOK := i == n; a.OK() != wantOK {
					t.Errorf("attempt %d: status %d, OK() = %v", a.N, a.Status, a.OK())
				}
			}
			if want := time.Unix(1_700_000_000, 0).Add(offsets[n]); !clock.Now().Equal(want) {
				t.Errorf("clock = %v, want %v", clock.Now(), want)
			}
			if len(reported) != n+1 {
				t.Errorf("OnAttempt called %d times, want %d", len(reported), n+1)
			}
		})
	}
}

func TestDeliverGivesUpAfterTheSixteenthAttempt(t *testing.T) {
	clock := bizcircletest.NewClock(time.Unix(1_700_000_000, 0))
	h, calls := failing(1000)
	d := &bizcircletest.Deliverer{Sleep: clock.Sleep}
	attempts, err := d.Deliver(t.Context(), h, bizcircletest.NewPlatform().Payment(bizcircletest.SamplePayment()))
	if !errors.Is(err, bizcircletest.ErrNotAcknowledged) {
		t.Fatalf("err = %v, want ErrNotAcknowledged", err)
	}
	if len(attempts) != 16 || calls.Load() != 16 {
		t.Fatalf("%d attempts, %d requests; want 16", len(attempts), calls.Load())
	}
	if last := attempts[15]; last.Offset != 24*time.Hour+4*time.Minute || last.Status != http.StatusInternalServerError {
		t.Errorf("last attempt: offset %v, status %d", last.Offset, last.Status)
	}
	if elapsed := clock.Now().Sub(time.Unix(1_700_000_000, 0)); elapsed != 24*time.Hour+4*time.Minute {
		t.Errorf("schedule took %v, want 24h4m", elapsed)
	}
}

// answering returns a handler that answers every request with status.
func answering(status int) (http.Handler, *atomic.Int32) {
	var calls atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(status)
	}), &calls
}

// TestDeliverAcceptsOnly200And204 follows WeChat Pay: only 200 and 204
// acknowledge a notification; any other 2xx is a failure and is retried.
func TestDeliverAcceptsOnly200And204(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		attempts int
	}{
		{"200 OK is acknowledged at once", http.StatusOK, 1},
		{"204 No Content is acknowledged at once", http.StatusNoContent, 1},
		{"201 Created is retried to the end", http.StatusCreated, 16},
		{"202 Accepted is retried to the end", http.StatusAccepted, 16},
		{"206 Partial Content is retried to the end", http.StatusPartialContent, 16},
		{"302 Found is retried to the end", http.StatusFound, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, calls := answering(tt.status)
			d := &bizcircletest.Deliverer{Sleep: bizcircletest.NewClock(time.Now()).Sleep}
			attempts, err := d.Deliver(t.Context(), h, bizcircletest.NewPlatform().Payment(bizcircletest.SamplePayment()))
			if len(attempts) != tt.attempts || int(calls.Load()) != tt.attempts {
				t.Fatalf("%d attempts, %d requests; want %d", len(attempts), calls.Load(), tt.attempts)
			}
			acked := tt.attempts == 1
			if (err == nil) != acked || (!acked && !errors.Is(err, bizcircletest.ErrNotAcknowledged)) {
				t.Errorf("err = %v, want acknowledged = %v", err, acked)
			}
			if got := attempts[len(attempts)-1].OK(); got != acked {
				t.Errorf("OK() = %v for %d, want %v", got, tt.status, acked)
			}
			if got := bizcircletest.Acknowledged(tt.status); got != acked {
				t.Errorf("Acknowledged(%d) = %v, want %v", tt.status, got, acked)
			}
		})
	}
}

// TestDeliverRunsAFailingCallbackOnce is the point of the helper: through
// the real kit, a callback that fails three times succeeds exactly once,
// although the later attempts come long after the first one's timestamp
// would have gone stale.
func TestDeliverRunsAFailingCallbackOnce(t *testing.T) {
	clock := bizcircletest.NewClock(time.Now())
	p := bizcircletest.NewPlatform()
	p.Now = clock.Now
	var tries, successes int
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		tries++
		if tries <= 3 {
			return errors.New("points service down")
		}
		successes++
		return nil
	}}
	h, err := bizcircle.New(p.APIv3Key, p.Verifier(), cb,
		bizcircle.WithClock(clock.Now),
		bizcircle.WithLogger(deliverTestLogger))
	if err != nil {
		t.Fatal(err)
	}
	d := &bizcircletest.Deliverer{Platform: p, Sleep: clock.Sleep}
	m := p.Payment(bizcircletest.SamplePayment())
	attempts, err := d.Deliver(t.Context(), h, m)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	statuses := make([]int, len(attempts))
	for i, a := range attempts {
		statuses[i] = a.Status
	}
	if want := []int{500, 500, 500, 204}; !slices.Equal(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	if !strings.Contains(string(attempts[0].Body), `"callback failed"`) {
		t.Errorf("first answer = %s", attempts[0].Body)
	}
	if tries != 4 || successes != 1 {
		t.Errorf("callback tried %d times, succeeded %d; want 4 and 1", tries, successes)
	}

	// WeChat Pay's next duplicate, a day later, is acknowledged without
	// running the callback again.
	clock.Advance(20 * time.Hour)
	again, err := d.Deliver(t.Context(), h, m)
	if err != nil || len(again) != 1 || again[0].Status != http.StatusNoContent {
		t.Fatalf("duplicate: %d attempts, err %v", len(again), err)
	}
	if successes != 1 || tries != 4 {
		t.Errorf("duplicate ran the callback: tries %d, successes %d", tries, successes)
	}
}

func TestDeliverResignsEachAttempt(t *testing.T) {
	clock := bizcircletest.NewClock(time.Unix(1_700_000_000, 0))
	p := bizcircletest.NewPlatform()
	p.Now = clock.Now
	var seen []http.Header
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Clone())
		w.WriteHeader(http.StatusInternalServerError)
	})
	d := &bizcircletest.Deliverer{Platform: p, Sleep: clock.Sleep, Schedule: []time.Duration{time.Minute}}
	m := p.Payment(bizcircletest.SamplePayment())
	if _, err := d.Deliver(t.Context(), h, m); !errors.Is(err, bizcircletest.ErrNotAcknowledged) {
		t.Fatalf("err = %v", err)
	}
	if len(seen) != 2 {
		t.Fatalf("%d requests, want 2", len(seen))
	}
	if got := seen[1].Get(bizcircle.HeaderTimestamp); got != "1700000060" {
		t.Errorf("second timestamp = %s, want 1700000060", got)
	}
	if seen[0].Get(bizcircle.HeaderNonce) == seen[1].Get(bizcircle.HeaderNonce) {
		t.Error("both attempts carry the same nonce")
	}
	if m.Header.Get(bizcircle.HeaderTimestamp) != "1700000000" {
		t.Error("Deliver changed the caller's message")
	}
}

func TestDeliverWithoutPlatformSendsTheMessageAsIs(t *testing.T) {
	p := bizcircletest.NewPlatform()
	m := p.Payment(bizcircletest.SamplePayment())
	var sigs []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sigs = append(sigs, r.Header.Get(bizcircle.HeaderSignature))
		w.WriteHeader(http.StatusUnauthorized)
	})
	d := &bizcircletest.Deliverer{Sleep: bizcircletest.NewClock(time.Now()).Sleep, Schedule: []time.Duration{time.Second, time.Second}}
	d.Deliver(t.Context(), h, m)
	want := m.Header.Get(bizcircle.HeaderSignature)
	if len(sigs) != 3 || sigs[0] != want || sigs[2] != want {
		t.Errorf("signatures sent = %d, want 3 copies of the message's", len(sigs))
	}
}

func TestDeliverURL(t *testing.T) {
	clock := bizcircletest.NewClock(time.Now())
	p := bizcircletest.NewPlatform()
	p.Now = clock.Now
	h, calls := failing(2)
	srv := httptest.NewServer(h)
	defer srv.Close()
	d := &bizcircletest.Deliverer{Platform: p, Sleep: clock.Sleep, Client: srv.Client()}
	attempts, err := d.DeliverURL(t.Context(), srv.URL, p.Payment(bizcircletest.SamplePayment()))
	if err != nil {
		t.Fatalf("DeliverURL: %v", err)
	}
	if len(attempts) != 3 || calls.Load() != 3 || attempts[2].Status != http.StatusNoContent || attempts[2].Offset != 30*time.Second {
		t.Errorf("attempts = %+v", attempts)
	}
	if !strings.Contains(string(attempts[0].Body), "down") {
		t.Errorf("first body = %q", attempts[0].Body)
	}
}

func TestDeliverURLRetriesTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connections are now refused
	d := &bizcircletest.Deliverer{Sleep: bizcircletest.NewClock(time.Now()).Sleep, Schedule: []time.Duration{time.Second}}
	attempts, err := d.DeliverURL(t.Context(), url, bizcircletest.NewPlatform().Payment(bizcircletest.SamplePayment()))
	if !errors.Is(err, bizcircletest.ErrNotAcknowledged) || len(attempts) != 2 {
		t.Fatalf("err = %v, %d attempts", err, len(attempts))
	}
	if attempts[0].Err == nil || attempts[0].Status != 0 || attempts[0].OK() {
		t.Errorf("first attempt = %+v, want a transport error", attempts[0])
	}
}

func TestDeliverStopsWhenTheContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	h, calls := failing(1000)
	d := &bizcircletest.Deliverer{
		Sleep: bizcircletest.NewClock(time.Now()).Sleep,
		OnAttempt: func(a bizcircletest.Attempt) {
			if a.N == 2 {
				cancel()
			}
		},
	}
	attempts, err := d.Deliver(ctx, h, bizcircletest.NewPlatform().Payment(bizcircletest.SamplePayment()))
	if !errors.Is(err, context.Canceled) || len(attempts) != 2 || calls.Load() != 2 {
		t.Errorf("err = %v, %d attempts, %d requests; want context.Canceled after 2", err, len(attempts), calls.Load())
	}
}

func TestDeliverRoutesToTarget(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /wechat/notify", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	d := &bizcircletest.Deliverer{Target: "/wechat/notify", Sleep: bizcircletest.NewClock(time.Now()).Sleep}
	attempts, err := d.Deliver(t.Context(), mux, bizcircletest.NewPlatform().Payment(bizcircletest.SamplePayment()))
	if err != nil || len(attempts) != 1 {
		t.Errorf("err = %v, %d attempts", err, len(attempts))
	}
}

func ExampleDeliverer() {
	clock := bizcircletest.NewClock(time.Now())
	p := bizcircletest.NewPlatform()
	p.Now = clock.Now

	failures := 2
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		if failures > 0 {
			failures--
			return errors.New("points service down")
		}
		fmt.Println("awarded points for", e.Amount, "fen")
		return nil
	}}
	h, _ := bizcircle.New(p.APIv3Key, p.Verifier(), cb, bizcircle.WithClock(clock.Now), bizcircle.WithLogger(deliverTestLogger))

	d := &bizcircletest.Deliverer{
		Platform: p,
		Sleep:    clock.Sleep, // replays the schedule without waiting
		OnAttempt: func(a bizcircletest.Attempt) {
			fmt.Printf("attempt %d at +%v: %d\n", a.N, a.Offset, a.Status)
		},
	}
	_, err := d.Deliver(context.Background(), h, p.Payment(bizcircletest.SamplePayment()))
	fmt.Println("error:", err)
	// Output:
	// attempt 1 at +0s: 500
	// attempt 2 at +15s: 500
	// awarded points for 200 fen
	// attempt 3 at +30s: 204
	// error: <nil>
}
