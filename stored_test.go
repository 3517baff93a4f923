package bizcircle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/google/go-cmp/cmp"
)

// errForged plays queue's ErrUnverified.
var errForged = errors.New("queue: stored notification does not verify")

// worker is a queue worker in short: a Decoder and a Dispatcher with one
// hook, observer and logger.
type worker struct {
	dec    *bizcircle.Decoder
	disp   *bizcircle.Dispatcher
	hook   *traceHook
	logs   *logBuffer
	mu     sync.Mutex
	seen   []bizcircle.Observation
	handle func(ctx context.Context, e *bizcircle.PaymentEvent) error
}

func newWorker(t *testing.T) *worker {
	t.Helper()
	w := &worker{hook: &traceHook{}, logs: &logBuffer{}}
	opts := []bizcircle.Option{
		bizcircle.WithHook(w.hook.hook()), bizcircle.WithLogger(w.logs.logger()),
		bizcircle.WithObserver(func(o bizcircle.Observation) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.seen = append(w.seen, o)
		}),
	}
	var err error
	if w.dec, err = bizcircle.NewDecoder(platform.APIv3Key, platform.Verifier(), opts...); err != nil {
		t.Fatal(err)
	}
	w.disp = bizcircle.NewDispatcher(bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}, opts...)
	return w
}

// process does what queue mode's worker does with a stored message: one
// delivery that verifies it again, refuses it if check says so, and
// dispatches it otherwise.
func (w *worker) process(m *bizcircletest.Message, job *bizcircle.Job, check func(*bizcircle.Notification) (bizcircle.Outcome, error)) {
	ctx, end := w.disp.StartStored(context.Background(), bizcircle.Delivery{Header: m.Header, Carried: map[string]string{"span": "s9"}, Job: job})
	defer end()
	n, err := w.dec.DecodeStored(ctx, m.Header, m.Body)
	if err != nil {
		w.disp.ReportStored(ctx, nil, bizcircle.OutcomeRejected, fmt.Errorf("%w: %w", errForged, err))
		return
	}
	if out, err := check(n); err != nil {
		w.disp.ReportStored(ctx, n, out, err)
		return
	}
	w.disp.Dispatch(ctx, n)
}

func accept(*bizcircle.Notification) (bizcircle.Outcome, error) { return 0, nil }

func TestStoredNotificationIsOneDelivery(t *testing.T) {
	job := &bizcircle.Job{System: "river", Queue: "bizcircle", ID: "42", Attempt: 3}
	errKey := errors.New("queue: job key does not match its notification")
	errNoHandler := errors.New("queue: no handler for the stored event type")
	for _, tc := range []struct {
		name    string
		message func() *bizcircletest.Message
		check   func(*bizcircle.Notification) (bizcircle.Outcome, error)
		events  []string
		outcome bizcircle.Outcome
		err     error
		ids     bool   // the observation names the verified notification
		log     string // the record logged, "" for none at Warn or above
	}{
		{
			name:    "a stored notification that verifies is dispatched in the delivery StartStored began",
			message: func() *bizcircletest.Message { return platform.Payment(bizcircletest.SamplePayment()) },
			check:   accept,
			events:  []string{"start carrying s9 job river bizcircle/42 #3@1", "callback MALL_TRANSACTION.SUCCESS@1", "processed@1", "end@1"},
			outcome: bizcircle.OutcomeProcessed,
			ids:     true,
		},
		{
			name: "a forged row is a rejected delivery, logged as a warning",
			message: func() *bizcircletest.Message {
				m := platform.Payment(bizcircletest.SamplePayment())
				m.Body = []byte(strings.Replace(string(m.Body), `"id":"`, `"id":"x`, 1))
				return m
			},
			check:   accept,
			events:  []string{"start carrying s9 job river bizcircle/42 #3@1", "rejected@1", "end@1"},
			outcome: bizcircle.OutcomeRejected,
			err:     errForged,
			log:     `level=WARN msg="bizcircle: stored notification rejected" job_id=42 attempt=3 error="queue: stored notification does not verify: bizcircle: signature verification failed`,
		},
		{
			name:    "a notification under another job's key is rejected with its verified IDs",
			message: func() *bizcircletest.Message { return platform.Payment(bizcircletest.SamplePayment()) },
			check: func(*bizcircle.Notification) (bizcircle.Outcome, error) {
				return bizcircle.OutcomeRejected, errKey
			},
			events:  []string{"start carrying s9 job river bizcircle/42 #3@1", "rejected@1", "end@1"},
			outcome: bizcircle.OutcomeRejected,
			err:     errKey,
			ids:     true,
			log:     `level=WARN msg="bizcircle: stored notification rejected" notification_id=`,
		},
		{
			name:    "a notification no handler takes any more is a failure, logged as an error",
			message: func() *bizcircletest.Message { return platform.Payment(bizcircletest.SamplePayment()) },
			check: func(*bizcircle.Notification) (bizcircle.Outcome, error) {
				return bizcircle.OutcomeFailed, errNoHandler
			},
			events:  []string{"start carrying s9 job river bizcircle/42 #3@1", "failed@1", "end@1"},
			outcome: bizcircle.OutcomeFailed,
			err:     errNoHandler,
			ids:     true,
			log:     `level=ERROR msg="bizcircle: stored notification failed" notification_id=`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorker(t)
			m := tc.message()
			w.process(m, job, tc.check)
			if diff := cmp.Diff(tc.events, w.hook.events); diff != "" {
				t.Errorf("hook events (-want +got):\n%s", diff)
			}
			if len(w.seen) != 1 {
				t.Fatalf("observed %d outcomes, want 1: %v", len(w.seen), w.seen)
			}
			o := w.seen[0]
			if o.Outcome != tc.outcome || !errors.Is(o.Err, tc.err) || (tc.err == nil) != (o.Err == nil) {
				t.Errorf("observed %v (%v), want %v (%v)", o.Outcome, o.Err, tc.outcome, tc.err)
			}
			if got := o.EventType != "" && o.NotificationID == m.ID; got != tc.ids {
				t.Errorf("observed event type %q, notification %q; want the verified ones: %v", o.EventType, o.NotificationID, tc.ids)
			}
			var logged []string
			for line := range strings.Lines(w.logs.String()) {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					logged = append(logged, line)
				}
			}
			switch {
			case tc.log == "" && len(logged) != 0:
				t.Errorf("logged %q, want nothing at Warn or above", logged)
			case tc.log != "" && (len(logged) != 1 || !strings.Contains(logged[0], tc.log)):
				t.Errorf("logged %q, want one record with %s", logged, tc.log)
			}
		})
	}
}

// A flood of forged rows logs one warning a minute, then says how many it
// left out.
func TestStoredRejectionsAreSampled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorker(t)
		forge := func() {
			m := platform.Payment(bizcircletest.SamplePayment())
			m.Header = m.Header.Clone()
			m.Header.Set(bizcircle.HeaderSignature, "Zm9yZ2Vk")
			w.process(m, &bizcircle.Job{System: "river", Queue: "bizcircle", ID: "1", Attempt: 1}, accept)
		}
		warnings := func() []string {
			var got []string
			for line := range strings.Lines(w.logs.String()) {
				if strings.Contains(line, "level=WARN") {
					got = append(got, strings.TrimSpace(line))
				}
			}
			return got
		}
		for range 5 {
			forge()
		}
		if got := warnings(); len(got) != 1 || !strings.Contains(got[0], "stored notification rejected") {
			t.Fatalf("5 forged rows logged %q, want one warning", got)
		}
		if len(w.seen) != 5 {
			t.Errorf("observed %d outcomes, want all 5", len(w.seen))
		}
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if got := warnings(); len(got) != 2 || !strings.Contains(got[1], `"bizcircle: more stored notifications rejected than the log shows" suppressed=4`) {
			t.Fatalf("after 15s logged %q, want a summary of the 4 left out", got)
		}
		forge()
		if got := warnings(); len(got) != 2 {
			t.Fatalf("another forged row within the minute logged %q", got[2:])
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		forge()
		got := warnings()
		if len(got) != 4 || !strings.Contains(got[2], "suppressed=1") || !strings.Contains(got[3], "stored notification rejected") {
			t.Fatalf("a minute later logged %q, want the summary of the one left out, then a warning", got[2:])
		}
	})
}
