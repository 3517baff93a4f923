package soak_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/internal/soak"
)

var events = flag.Int("soak.events", 3000, "distinct events in a soak run; try 20000 for a long one")

// traffic is the fault mix of every soak run.
func traffic(newDeduper func(func() time.Time) bizcircle.Deduper, replicas int) soak.Config {
	return soak.Config{
		Events: *events, Seed: 2026, NewDeduper: newDeduper, Replicas: replicas,
		CallbackErrors: 0.10, CallbackPanics: 0.03, SlowCallbacks: 0.02, DeduperFaults: 0.04,
		Duplicates: 0.05, ConcurrentDuplicates: 0.05,
	}
}

func run(t *testing.T, cfg soak.Config) {
	t.Helper()
	rep, err := soak.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	if rep.Deliveries <= rep.Events || rep.Answers[500] == 0 {
		t.Fatalf("the traffic had no retries: %d deliveries for %d events, answers %v", rep.Deliveries, rep.Events, rep.Answers)
	}
	t.Logf("%d events, %d deliveries over %v simulated: answers %v; 0 lost, 0 doubled",
		rep.Events, rep.Deliveries, rep.Simulated.Round(time.Minute), rep.Answers)
}

func TestSoakMemory(t *testing.T) {
	run(t, traffic(func(clock func() time.Time) bizcircle.Deduper {
		d, err := bizcircle.NewMemoryDeduper(bizcircle.WithClock(clock))
		if err != nil {
			panic(err) // a valid clock: cannot happen
		}
		return d
	}, 1))
}

// forgetful runs every delivery: the soak must catch the doubles.
type forgetful struct{}

func (forgetful) Do(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

func TestSoakCatchesDoubles(t *testing.T) {
	cfg := traffic(func(func() time.Time) bizcircle.Deduper { return forgetful{} }, 1)
	cfg.Events = 200
	rep, err := soak.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Check() == nil {
		t.Fatal("Check found nothing wrong with a deduper that never deduplicates")
	}
}
