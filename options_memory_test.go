package bizcircle_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// The memory options are the only ones NewMemoryDeduper takes, and an
// invalid value is an error, never ignored.
func TestNewMemoryDeduperOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []bizcircle.Option
		wantErr string // "" for none
	}{
		{"no options", nil, ""},
		{"every memory option", []bizcircle.Option{bizcircle.WithTTL(time.Hour), bizcircle.WithMaxKeys(10),
			bizcircle.WithInFlightWait(0), bizcircle.WithClock(fixedClock)}, ""},
		{"a handler option", []bizcircle.Option{bizcircle.WithTTL(time.Hour), bizcircle.WithTolerance(time.Minute)},
			"WithTolerance does not configure a deduper"},
		{"a TTL of zero", []bizcircle.Option{bizcircle.WithTTL(0)}, "WithTTL: ttl must be positive"},
		{"no keys", []bizcircle.Option{bizcircle.WithMaxKeys(0)}, "WithMaxKeys: 0 keys"},
		{"a negative wait", []bizcircle.Option{bizcircle.WithInFlightWait(-time.Second)}, "WithInFlightWait: wait must not be negative"},
		{"a nil clock", []bizcircle.Option{bizcircle.WithClock(nil)}, "WithClock: nil clock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := bizcircle.NewMemoryDeduper(tc.opts...)
			switch {
			case tc.wantErr == "" && (err != nil || d == nil):
				t.Fatalf("NewMemoryDeduper = %v, %v; want a deduper", d, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || d != nil):
				t.Fatalf("NewMemoryDeduper = %v, %v; want no deduper and an error containing %q", d, err, tc.wantErr)
			}
		})
	}
}

// New builds its default MemoryDeduper from the memory options and its
// clock; beside WithDeduper they cannot apply, and are an error.
func TestNewConfiguresTheDefaultDeduper(t *testing.T) {
	cb := func(runs *int) bizcircle.CallbackFuncs {
		return bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { *runs++; return nil }}
	}
	t.Run("WithTTL and WithClock reach the default deduper", func(t *testing.T) {
		clock := bizcircletest.NewClock(epoch)
		wechat := bizcircletest.NewPlatform()
		wechat.Now = clock.Now
		var runs int
		h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), cb(&runs),
			bizcircle.WithClock(clock.Now), bizcircle.WithTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		m := wechat.Payment(bizcircletest.SamplePayment())
		for _, step := range []struct {
			advance  time.Duration
			wantRuns int
		}{
			{0, 1},               // the first delivery runs
			{time.Hour - 1, 1},   // a retry within the TTL is a duplicate
			{time.Nanosecond, 2}, // one after it runs again: the TTL is an hour, not 25
		} {
			clock.Advance(step.advance)
			if w := serve(h, wechat.Resign(m).Request("/notify")); w.Code != 204 {
				t.Fatalf("after %v: status %d, body %s", step.advance, w.Code, w.Body)
			}
			if runs != step.wantRuns {
				t.Fatalf("after %v: callback ran %d times, want %d", step.advance, runs, step.wantRuns)
			}
		}
	})
	t.Run("a memory option beside WithDeduper is an error", func(t *testing.T) {
		var runs int
		_, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), cb(&runs),
			bizcircle.WithDeduper(memory(t)), bizcircle.WithMaxKeys(5))
		if err == nil || !strings.Contains(err.Error(), "WithMaxKeys configures the default MemoryDeduper") {
			t.Fatalf("New = %v, want the WithMaxKeys error", err)
		}
	})
}
