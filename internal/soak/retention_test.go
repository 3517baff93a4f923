package soak_test

import (
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
)

// TestDefaultRetentionsCoverTheLongestRetrySchedule: every default that
// remembers a completed event outlasts WeChat Pay's retries, 24h4m for
// payments and refunds, and the longer of the disputed schedules for
// MALL_AUTH.ACTIVATE_CARD (pgdedupe's default is bizcircle.DefaultTTL).
func TestDefaultRetentionsCoverTheLongestRetrySchedule(t *testing.T) {
	var window time.Duration
	for _, d := range bizcircletest.RetrySchedule() {
		window += d
	}
	if window != 24*time.Hour+4*time.Minute {
		t.Fatalf("retry schedule spans %v, want 24h4m", window)
	}
	for name, d := range map[string]time.Duration{
		"bizcircle.DefaultTTL (memory, pgdedupe)": bizcircle.DefaultTTL,
		"redisdedupe.DefaultTTL":                  redisdedupe.DefaultTTL,
		"queue.DefaultCompletedRetention":         queue.DefaultCompletedRetention,
	} {
		if d <= window {
			t.Errorf("%s = %v, not longer than the %v retry window", name, d, window)
		}
	}
}
