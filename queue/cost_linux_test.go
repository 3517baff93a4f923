package queue_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/riverqueue/river"
)

// BenchmarkInsertCost splits the CPU that storing a notification costs
// between this process (River and pgx) and the rest of the machine
// (PostgreSQL and the kernel): b.N jobs in batches of 1, 3, 8 and 64,
// stored as the endpoint stores them (one autocommitting InsertManyTx per
// batch) by 4 goroutines, with the job arguments as stored ("signed") and
// with the event key alone ("key-only"), which shows what the signed
// envelope costs. It reads /proc, so it counts every process on the
// machine: run it on a quiet one, with a fixed count, e.g.
// -benchtime=8192x.
func BenchmarkInsertCost(b *testing.B) {
	platform := bizcircletest.NewPlatform()
	pool := newPool(b, "", 16)
	msgs := signed(b, platform, min(b.N, 2048))
	cb := bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}
	for _, args := range []string{"signed", "key-only"} {
		for _, batch := range []int{1, 3, 8, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", args, batch), func(b *testing.B) {
				q, err := queue.New(pool, platform.APIv3Key, platform.Verifier(), cb,
					queue.WithSchema(newSchema(b, pool)), queue.WithLogger(quiet))
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
				batches := make([][]river.InsertManyParams, 0, b.N/batch+1)
				for i := 0; i < b.N; i += batch {
					params := make([]river.InsertManyParams, 0, batch)
					for j := i; j < min(i+batch, b.N); j++ {
						a := argsOf(msgs[j%len(msgs)], fmt.Sprintf("%s:%d-%d", bizcircle.EventPayment, time.Now().UnixNano(), j))
						if args == "key-only" {
							params = append(params, river.InsertManyParams{Args: keyOnlyArgs{Key: a.Key}})
						} else {
							params = append(params, river.InsertManyParams{Args: a})
						}
					}
					batches = append(batches, params)
				}
				own0, all0 := cpuTicks(b)
				start := time.Now()
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						ctx := context.Background()
						for i := next.Add(1) - 1; i < int64(len(batches)); i = next.Add(1) - 1 {
							conn, err := pool.Acquire(ctx)
							if err != nil {
								b.Error(err)
								return
							}
							_, err = q.River().InsertManyTx(ctx, queue.Autocommit(conn.Conn()), batches[i])
							conn.Release()
							if err != nil {
								b.Error(err)
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				elapsed := time.Since(start)
				own1, all1 := cpuTicks(b)
				const µsPerTick = 1e6 / 100 // USER_HZ
				n := float64(b.N)
				b.ReportMetric(float64(own1-own0)*µsPerTick/n, "process-cpu-µs/job")
				b.ReportMetric(float64((all1-all0)-(own1-own0))*µsPerTick/n, "others-cpu-µs/job")
				b.ReportMetric(float64(elapsed.Microseconds())/n, "wall-µs/job")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// keyOnlyArgs is a notification job without its signed envelope.
type keyOnlyArgs struct {
	Key string `json:"key" river:"unique"`
}

func (keyOnlyArgs) Kind() string                 { return queue.KindNotification }
func (keyOnlyArgs) InsertOpts() river.InsertOpts { return queue.NotificationArgs{}.InsertOpts() }

// cpuTicks returns the CPU time this process and the whole machine have
// used (not idle, not waiting for I/O), in clock ticks.
func cpuTicks(b *testing.B) (own, all int64) {
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		b.Skip("no /proc:", err)
	}
	// Fields after "pid (comm) ": utime and stime are the 12th and 13th.
	f := strings.Fields(string(self[strings.LastIndexByte(string(self), ')')+2:]))
	for _, s := range f[11:13] {
		v, _ := strconv.ParseInt(s, 10, 64)
		own += v
	}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Skip("no /proc:", err)
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	for i, s := range strings.Fields(line)[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		all += v
	}
	return own, all
}
