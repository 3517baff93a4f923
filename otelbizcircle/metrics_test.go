package otelbizcircle_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/google/go-cmp/cmp"
)

func TestMetricsCountEachOutcome(t *testing.T) {
	tel := newTelemetry(t)
	failures := 1
	h := tel.endpoint(t, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error {
		if failures > 0 {
			failures--
			return errors.New("points service down")
		}
		return nil
	}})
	paid := platform.Payment(payment())
	for _, step := range []struct {
		m    *bizcircletest.Message
		want int
	}{{paid, 500}, {platform.Resign(paid), 204}, {platform.Resign(paid), 204}, {forged(paid), 401}} {
		if got := serve(h, step.m.Request("/notify")); got != step.want {
			t.Fatalf("status %d, want %d", got, step.want)
		}
	}
	ms := tel.metrics(t)

	const ev = "bizcircle.event_type=MALL_TRANSACTION.SUCCESS"
	wantCounts := map[string]int64{
		ev + ",bizcircle.outcome=verified":                      3,
		ev + ",bizcircle.outcome=failed,error.type=ErrCallback": 1,
		ev + ",bizcircle.outcome=processed":                     1,
		ev + ",bizcircle.outcome=duplicate":                     1,
		"bizcircle.outcome=rejected,error.type=ErrSignature":    1,
	}
	if diff := cmp.Diff(wantCounts, counts(t, ms["bizcircle.notifications"])); diff != "" {
		t.Errorf("bizcircle.notifications (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		name  string
		unit  string
		count map[string]uint64
	}{
		{"bizcircle.verify.duration", "s", map[string]uint64{
			"bizcircle.outcome=verified":                         3,
			"bizcircle.outcome=rejected,error.type=ErrSignature": 1,
		}},
		{"bizcircle.callback.duration", "s", map[string]uint64{
			ev + ",error.type=ErrCallback": 1,
			ev:                             1,
		}},
		{"bizcircle.dedupe.duration", "s", map[string]uint64{
			"bizcircle.dedupe=new":       2,
			"bizcircle.dedupe=duplicate": 1,
		}},
	} {
		m := ms[c.name]
		if m.Unit != c.unit {
			t.Errorf("%s has unit %q, want %q", c.name, m.Unit, c.unit)
		}
		got := map[string]uint64{}
		for attrs, dp := range histogram(t, m) {
			got[attrs] = dp.Count
			if len(dp.Bounds) == 0 || dp.Bounds[0] != 0.0001 {
				t.Errorf("%s{%s} has buckets %v, want the advised ones from 100µs", c.name, attrs, dp.Bounds)
			}
		}
		if diff := cmp.Diff(c.count, got); diff != "" {
			t.Errorf("%s counts (-want +got):\n%s", c.name, diff)
		}
	}
	if u := ms["bizcircle.notifications"].Unit; u != "{notification}" {
		t.Errorf("bizcircle.notifications has unit %q, want {notification}", u)
	}
}

// slowDeduper takes its time around the callback, as a remote deduper's
// round trips do.
type slowDeduper struct {
	bizcircle.Deduper
	claim, mark time.Duration
}

func (d slowDeduper) Do(ctx context.Context, key string, fn func(context.Context) error) (bool, error) {
	time.Sleep(d.claim)
	ran, err := d.Deduper.Do(ctx, key, fn)
	time.Sleep(d.mark)
	return ran, err
}

// sums returns a histogram's sums by attributes.
func sums(t *testing.T, tel *telemetry, name string) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	for attrs, dp := range histogram(t, tel.metrics(t)[name]) {
		got[attrs] = dp.Sum
	}
	return got
}

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// The durations are measured in a synctest bubble, where time moves only
// when every goroutine waits: they are exact.
func TestDedupeDurationExcludesTheCallback(t *testing.T) {
	t.Run("round trips around the callback are the deduper's, the callback's time is not", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tel := newTelemetry(t)
			memory, err := bizcircle.NewMemoryDeduper()
			if err != nil {
				t.Fatal(err)
			}
			h := tel.endpoint(t, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error {
				time.Sleep(time.Second)
				return nil
			}}, bizcircle.WithDeduper(slowDeduper{memory, 3 * time.Millisecond, 2 * time.Millisecond}))
			m := platform.Payment(payment())
			serve(h, m.Request("/notify"))
			serve(h, platform.Resign(m).Request("/notify"))

			dedupe := sums(t, tel, "bizcircle.dedupe.duration")
			if got := dedupe["bizcircle.dedupe=new"]; !approx(got, 0.005) {
				t.Errorf("dedupe duration of the new event %vs, want 0.005s", got)
			}
			if got := dedupe["bizcircle.dedupe=duplicate"]; !approx(got, 0.005) {
				t.Errorf("dedupe duration of the duplicate %vs, want 0.005s", got)
			}
			if got := sums(t, tel, "bizcircle.callback.duration")["bizcircle.event_type="+m.EventType]; !approx(got, 1) {
				t.Errorf("callback duration %vs, want 1s", got)
			}
		})
	})
	t.Run("a wait for the delivery holding the event is an in-flight wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tel := newTelemetry(t)
			release := make(chan struct{})
			h := tel.endpoint(t, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error {
				<-release
				return nil
			}})
			m := platform.Payment(payment())
			var wg sync.WaitGroup
			wg.Go(func() { serve(h, m.Request("/notify")) })
			synctest.Wait() // the first delivery holds the event
			if got := serve(h, platform.Resign(m).Request("/notify")); got != 500 {
				t.Errorf("concurrent duplicate answered %d, want 500", got)
			}
			close(release)
			wg.Wait()

			if got := sums(t, tel, "bizcircle.dedupe.duration")["bizcircle.dedupe=in_flight"]; !approx(got, bizcircle.DefaultInFlightWait.Seconds()) {
				t.Errorf("in-flight wait %vs, want the MemoryDeduper's %v", got, bizcircle.DefaultInFlightWait)
			}
			if got := attrMap(tel.spans.Ended()[0].Attributes())["error.type"]; got != "ErrInFlight" {
				t.Errorf("the duplicate's span has error.type %q, want ErrInFlight", got)
			}
		})
	})
}
