package redisdedupe_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
)

// BenchmarkDo compares Do on Redis over loopback with the in-memory
// deduper, for fresh keys (claim and complete) and for duplicates of a
// completed key (claim only), serially (latency) and in parallel
// (throughput, 8 goroutines per CPU). Redis cases report round-trips/op.
func BenchmarkDo(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		memory, err := bizcircle.NewMemoryDeduper()
		if err != nil {
			b.Fatal(err)
		}
		bench(b, memory, nil)
	})
	b.Run("redis", func(b *testing.B) {
		c := newClient(b)
		var n counter
		c.AddHook(&n)
		d := newDeduper(b, c, redisdedupe.WithPrefix(testPrefix(b, c)), redisdedupe.WithTTL(time.Minute))
		// Load the scripts, so that their first use is not measured.
		_, _ = d.Do(context.Background(), "warm-up", func(context.Context) error { return nil })
		bench(b, d, &n)
	})
}

func bench(b *testing.B, d bizcircle.Deduper, n *counter) {
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	var seq atomic.Int64
	for _, tc := range []struct {
		name string
		key  func() string
		ran  bool
	}{
		{"fresh", func() string { return "fresh-" + strconv.FormatInt(seq.Add(1), 10) }, true},
		{"duplicate", func() string { return "duplicate" }, false},
	} {
		check := func(b *testing.B, ran bool, err error) {
			if err != nil || ran != tc.ran {
				b.Fatalf("Do = (%v, %v), want (%v, nil)", ran, err, tc.ran)
			}
		}
		// The memory deduper may have evicted the duplicate's key to make
		// room for fresh ones: complete it again.
		setup := func(b *testing.B) {
			if _, err := d.Do(ctx, "duplicate", fn); err != nil {
				b.Fatal(err)
			}
			if n != nil {
				n.reset()
			}
		}
		report := func(b *testing.B) {
			if n != nil {
				b.ReportMetric(float64(n.trips.Load())/float64(b.N), "round-trips/op")
			}
		}
		b.Run(tc.name+"/serial", func(b *testing.B) {
			setup(b)
			for b.Loop() {
				ran, err := d.Do(ctx, tc.key(), fn)
				check(b, ran, err)
			}
			report(b)
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			setup(b)
			b.SetParallelism(8) // Redis calls wait on the network
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ran, err := d.Do(ctx, tc.key(), fn)
					if err != nil || ran != tc.ran {
						b.Errorf("Do = (%v, %v), want (%v, nil)", ran, err, tc.ran)
						return
					}
				}
			})
			report(b)
		})
	}
}
