package bizcircle_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/go-bizcircle/bizcircle"
)

// heapPerKey fills a MemoryDeduper with n completed payment keys and returns
// the heap it holds per key.
func heapPerKey(tb testing.TB, n int) float64 {
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := memory(tb, bizcircle.WithMaxKeys(n))
	key := []byte(bizcircle.EventPayment + ":4200000000202611270000000000")
	prefix := len(key) - 10
	for i := range n {
		key = strconv.AppendInt(key[:prefix], int64(1e9+i), 10)
		d.Do(ctx, string(key), succeed)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if d.Len() != n {
		panic("keys were lost")
	}
	runtime.KeepAlive(d)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// BenchmarkMemoryDeduperBytesPerKey reports the heap per remembered key at
// one million keys (target: under 150 bytes).
func BenchmarkMemoryDeduperBytesPerKey(b *testing.B) {
	var perKey float64
	for b.Loop() {
		perKey = heapPerKey(b, 1_000_000)
	}
	b.ReportMetric(perKey, "bytes/key")
}

func TestMemoryDeduperBytesPerKey(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	if perKey := heapPerKey(t, n); perKey >= 150 {
		t.Errorf("%.0f bytes per key at %d keys, want under 150", perKey, n)
	} else {
		t.Logf("%.0f bytes per key at %d keys", perKey, n)
	}
}

// BenchmarkMemoryDeduper is the cost of one fresh key and one duplicate.
func BenchmarkMemoryDeduper(b *testing.B) {
	ctx := context.Background()
	d := memory(b)
	key := []byte(bizcircle.EventPayment + ":4200000000202611270000000000")
	prefix := len(key) - 10
	b.Run("fresh", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			key = strconv.AppendInt(key[:prefix], int64(1e9+i), 10)
			d.Do(ctx, string(key), succeed)
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		for b.Loop() {
			d.Do(ctx, string(key), succeed)
		}
	})
}
