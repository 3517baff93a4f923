package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/riverqueue/river"
)

// TestNewRefusesOptionsThatCannotApply: an option New cannot apply is an
// error naming what to do instead, never silently ignored.
func TestNewRefusesOptionsThatCannotApply(t *testing.T) {
	wechat := bizcircletest.NewPlatform()
	tests := []struct {
		name    string
		opt     queue.Option
		wantErr string
	}{
		{"bizcircle.WithDeduper, which River's unique jobs replace",
			queue.WithBizcircle(bizcircle.WithDeduper(memoryDeduper(t))), "use WithPriorDeduper"},
		{"bizcircle.WithDeduper after other bizcircle options",
			queue.WithBizcircle(bizcircle.WithClock(time.Now), bizcircle.WithDeduper(memoryDeduper(t))), "use WithPriorDeduper"},
		{"bizcircle.WithAPIv3Keys, which would not open sealed syncs",
			queue.WithBizcircle(bizcircle.WithAPIv3Keys(wechat.APIv3Key)), "use queue.WithAPIv3Keys"},
		{"bizcircle.WithLogger, which River would not log to",
			queue.WithBizcircle(bizcircle.WithLogger(quiet)), "use queue.WithLogger"},
		{"a MemoryDeduper option", queue.WithBizcircle(bizcircle.WithTTL(time.Hour)), "queue mode has no MemoryDeduper"},
		{"a nil prior Deduper", queue.WithPriorDeduper(nil), "WithPriorDeduper: nil Deduper"},
		{"a typed nil prior Deduper (an ignored constructor error)",
			queue.WithPriorDeduper((*pgdedupe.Deduper)(nil)), "WithPriorDeduper: nil Deduper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := queue.New(lazyPool(t), wechat.APIv3Key, wechat.Verifier(), &mall{}, queue.WithLogger(quiet), tt.opt)
			if err == nil {
				q.Close()
				t.Fatal("New succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New: %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
	t.Run("a prior Deduper", func(t *testing.T) {
		lazyQueue(t, queue.WithPriorDeduper(memoryDeduper(t)))
	})
}

// TestNewOutboxRefusesNotificationOptions: an Outbox works no
// notifications, so the options about them are errors from NewOutbox, not
// silently ignored; the options about River's jobs apply.
func TestNewOutboxRefusesNotificationOptions(t *testing.T) {
	wechat := bizcircletest.NewPlatform()
	for _, tt := range []struct {
		name string
		opt  queue.Option
	}{
		{"WithBizcircle", queue.WithBizcircle(bizcircle.WithClock(time.Now))},
		{"WithWorkers", queue.WithWorkers(4)},
		{"WithInsertTimeout", queue.WithInsertTimeout(time.Second)},
		{"WithGroupCommit", queue.WithGroupCommit(8, 1)},
		{"WithMeta", queue.WithMeta(nil)},
		{"WithPriorDeduper", queue.WithPriorDeduper(memoryDeduper(t))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ob, err := queue.NewOutbox(lazyPool(t), wechat.APIv3Key, queue.WithLogger(quiet), tt.opt)
			if err == nil {
				ob.Close()
				t.Fatal("NewOutbox succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.name+" cannot apply") {
				t.Errorf("NewOutbox: %v, want an error saying %s cannot apply", err, tt.name)
			}
		})
	}
	for _, tt := range []struct {
		name string
		key  string
	}{
		{"a key of 31 bytes", wechat.APIv3Key[:31]},
		{"no key", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ob, err := queue.NewOutbox(lazyPool(t), tt.key); err == nil {
				ob.Close()
				t.Fatal("NewOutbox succeeded, want an error")
			}
		})
	}
	t.Run("a nil pool", func(t *testing.T) {
		if _, err := queue.NewOutbox(nil, wechat.APIv3Key); err == nil {
			t.Fatal("NewOutbox succeeded, want an error")
		}
	})
	t.Run("the options about River's jobs, and Start without a points client", func(t *testing.T) {
		ob, err := queue.NewOutbox(lazyPool(t), wechat.APIv3Key, queue.WithLogger(quiet), queue.WithSchema("mall"),
			queue.WithMaxAttempts(3), queue.WithJobTimeout(time.Second), queue.WithCompletedRetention(48*time.Hour),
			queue.WithAPIv3Keys(bizcircletest.RandomAPIv3Key()))
		if err != nil {
			t.Fatal(err)
		}
		defer ob.Close()
		if err := ob.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "WithPointsClient") {
			t.Errorf("Start without a points client: %v, want an error naming WithPointsClient", err)
		}
	})
}

// memoryDeduper is bizcircle.NewMemoryDeduper for tests: an error fails t.
func memoryDeduper(t *testing.T) *bizcircle.MemoryDeduper {
	t.Helper()
	d, err := bizcircle.NewMemoryDeduper()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestAdminAndMigrateTakeOnlySchemaAndLogger: NewAdmin and Migrate apply
// WithSchema and WithLogger; any other option is an error, not ignored.
func TestAdminAndMigrateTakeOnlySchemaAndLogger(t *testing.T) {
	pool := lazyPool(t)
	if a, err := queue.NewAdmin(pool, queue.WithSchema("mall"), queue.WithLogger(quiet)); err != nil || a == nil {
		t.Fatalf("NewAdmin with WithSchema and WithLogger = %v, %v; want an Admin", a, err)
	}
	for _, opt := range []struct {
		name string
		opt  queue.Option
	}{
		{"WithWorkers", queue.WithWorkers(4)},
		{"WithDiscardedRetention", queue.WithDiscardedRetention(time.Hour)},
	} {
		if _, err := queue.NewAdmin(pool, opt.opt); err == nil || !strings.Contains(err.Error(), "NewAdmin: "+opt.name+" cannot apply") {
			t.Errorf("NewAdmin(%s) = %v, want an error saying it cannot apply", opt.name, err)
		}
		// The option is refused before Migrate connects (the pool cannot).
		if err := queue.Migrate(context.Background(), pool, opt.opt); err == nil || !strings.Contains(err.Error(), "Migrate: "+opt.name+" cannot apply") {
			t.Errorf("Migrate(%s) = %v, want an error saying it cannot apply", opt.name, err)
		}
	}
}

// TestCancelledJobsStayAsLongAsDeadLetters: River forgets cancelled jobs
// after a day by default; a refused sync or a job an operator cancelled must
// stay listed (queue failed, queue reconcile) as long as a dead letter.
func TestCancelledJobsStayAsLongAsDeadLetters(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []queue.Option
		want time.Duration
	}{
		{"by default", nil, queue.DefaultDiscardedRetention},
		{"with WithDiscardedRetention", []queue.Option{queue.WithDiscardedRetention(90 * 24 * time.Hour)}, 90 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got time.Duration
			lazyQueue(t, append(tc.opts, queue.WithRiverConfig(func(c *river.Config) { got = c.CancelledJobRetentionPeriod }))...)
			if got != tc.want {
				t.Errorf("River's CancelledJobRetentionPeriod = %v, want %v", got, tc.want)
			}
		})
	}
}
