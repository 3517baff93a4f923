package bizcircle

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Sampled logging: a burst of records, then one per interval. Whoever can
// send requests (anyone, before the signature verifies) or pick event types
// must not be able to fill the logs; the observer still sees every outcome.
const (
	logBurst    = 10
	logInterval = time.Second
	// logSummaryAfter is when a record says how many were left out, if no
	// record has said it since.
	logSummaryAfter = 10 * time.Second
)

// sampledLog writes at most logBurst records and then one per logInterval,
// counting the rest: the next record carries the count as "suppressed", or,
// if none comes, a summary record does after logSummaryAfter.
type sampledLog struct {
	logger  *slog.Logger
	what    string // "notifications rejected", for the summary
	limit   *rate.Limiter
	dropped atomic.Int64
	level   atomic.Int64 // the last dropped record's level
	pending atomic.Bool  // a summary is scheduled
}

func newSampledLog(l *slog.Logger, what string) *sampledLog {
	return newSampledLogEvery(l, what, logBurst, logInterval)
}

// newSampledLogEvery is newSampledLog writing burst records, then one per
// interval.
func newSampledLogEvery(l *slog.Logger, what string, burst int, interval time.Duration) *sampledLog {
	return &sampledLog{logger: l, what: what, limit: rate.NewLimiter(rate.Every(interval), burst)}
}

func (s *sampledLog) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !s.logger.Enabled(ctx, level) {
		return
	}
	if !s.limit.Allow() {
		s.dropped.Add(1)
		s.level.Store(int64(level))
		if s.pending.CompareAndSwap(false, true) {
			time.AfterFunc(logSummaryAfter, s.summarize)
		}
		return
	}
	if n := s.dropped.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("suppressed", n))
	}
	s.logger.LogAttrs(ctx, level, msg, attrs...)
}

func (s *sampledLog) summarize() {
	s.pending.Store(false)
	if n := s.dropped.Swap(0); n > 0 {
		s.logger.LogAttrs(context.Background(), slog.Level(s.level.Load()),
			"bizcircle: more "+s.what+" than the log shows", slog.Int64("suppressed", n))
	}
}
