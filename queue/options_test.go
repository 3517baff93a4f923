package queue_test

import (
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/queue"
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
			queue.WithBizcircle(bizcircle.WithDeduper(bizcircle.NewMemoryDeduper())), "use WithPriorDeduper"},
		{"bizcircle.WithDeduper after other bizcircle options",
			queue.WithBizcircle(bizcircle.WithLogger(quiet), bizcircle.WithDeduper(bizcircle.NewMemoryDeduper())), "use WithPriorDeduper"},
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
		lazyQueue(t, queue.WithPriorDeduper(bizcircle.NewMemoryDeduper()))
	})
}
