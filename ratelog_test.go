package bizcircle

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

func TestSampledLogSummarizesWhatItLeftOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		s := newSampledLog(slog.New(slog.NewTextHandler(&buf, nil)), "notifications rejected")
		ctx := context.Background()
		for range 100 {
			s.log(ctx, slog.LevelWarn, "rejected")
		}
		if n := len(buf.lines()); n != logBurst {
			t.Fatalf("%d records for a burst of 100, want %d", n, logBurst)
		}
		time.Sleep(logSummaryAfter + time.Second)
		synctest.Wait()
		lines := buf.lines()
		if len(lines) != logBurst+1 || !strings.Contains(lines[logBurst], "more notifications rejected than the log shows") ||
			!strings.Contains(lines[logBurst], "suppressed=90") {
			t.Fatalf("after %v: %q, want one summary of 90", logSummaryAfter, lines[len(lines)-1])
		}
		// A record after the interval carries nothing more: the summary counted it all.
		s.log(ctx, slog.LevelWarn, "rejected")
		if last := buf.lines()[logBurst+1]; strings.Contains(last, "suppressed") {
			t.Errorf("next record %q repeats the count", last)
		}
	})
}
