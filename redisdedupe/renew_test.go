package redisdedupe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestKeepAliveCancelsBeforeTheClaimCanLapse runs the renewal loop in a
// synctest bubble, on its fake clock, with renewals that fail, hang, answer
// late or succeed, and checks to the nanosecond when the callback's context
// is cancelled: the margin before the claim can lapse, which is a lease after
// the last successful renewal (or the claim) was sent.
func TestKeepAliveCancelsBeforeTheClaimCanLapse(t *testing.T) {
	const lease, margin = 30 * time.Second, 5 * time.Second
	errDown := errors.New("injected: redis unreachable")
	fail := func(context.Context) (bool, error) { return false, errDown }
	tests := []struct {
		name string
		// renew answers the nth renewal, counted from 1, sent every
		// lease/3 (10s) after the claim.
		renew func(ctx context.Context, n int) (bool, error)
		// wantCancel is when the context is cancelled, after the claim was
		// sent; 0 for not within five leases.
		wantCancel time.Duration
	}{
		{
			name:       "renewals fail: cancelled the margin before the claim can lapse",
			renew:      func(ctx context.Context, _ int) (bool, error) { return fail(ctx) },
			wantCancel: lease - margin,
		},
		{
			name: "renewals hang: cancelled the margin before the claim can lapse",
			renew: func(ctx context.Context, _ int) (bool, error) {
				<-ctx.Done() // each renewal times out after lease/3
				return false, ctx.Err()
			},
			wantCancel: lease - margin,
		},
		{
			name: "a renewal answers late: timed from when it was sent",
			renew: func(ctx context.Context, n int) (bool, error) {
				if n == 1 {
					time.Sleep(lease / 4) // sent at 10s, answered at 17.5s
					return true, nil
				}
				return fail(ctx)
			},
			wantCancel: lease/3 + lease - margin,
		},
		{
			name: "a renewal succeeds after one failed: the cancellation moves on",
			renew: func(ctx context.Context, n int) (bool, error) {
				if n == 2 { // sent at 20s
					return true, nil
				}
				return fail(ctx)
			},
			wantCancel: 2*lease/3 + lease - margin,
		},
		{
			name:  "renewals succeed: not cancelled",
			renew: func(context.Context, int) (bool, error) { return true, nil },
		},
		{
			name:       "the claim is lost to another delivery: cancelled at once",
			renew:      func(context.Context, int) (bool, error) { return false, nil },
			wantCancel: lease / 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				claimed := time.Now()
				ctx, cancel := context.WithCancelCause(context.Background())
				defer cancel(nil)
				cancelled := make(chan time.Time, 1)
				context.AfterFunc(ctx, func() { cancelled <- time.Now() })
				n := 0
				stop := keepAlive(ctx, cancel, claimed, lease, margin, func(ctx context.Context) (bool, error) {
					n++
					return tt.renew(ctx, n)
				})
				time.Sleep(5 * lease)
				stop()
				synctest.Wait()
				select {
				case at := <-cancelled:
					if got := at.Sub(claimed); got != tt.wantCancel {
						t.Errorf("cancelled %v after the claim was sent, want %v", got, tt.wantCancel)
					}
					if cause := context.Cause(ctx); cause != ErrLeaseLost {
						t.Errorf("cancelled with cause %v, want ErrLeaseLost", cause)
					}
				default:
					if tt.wantCancel != 0 {
						t.Errorf("not cancelled, want cancelled %v after the claim was sent", tt.wantCancel)
					}
				}
			})
		})
	}
}

func TestNewResolvesTheCancelMargin(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want time.Duration
	}{
		{"a sixth of the default lease", nil, DefaultLease / 6},
		{"a sixth of the lease set", []Option{WithLease(6 * time.Second)}, time.Second},
		{"as set, before or after the lease", []Option{WithCancelMargin(2 * time.Second), WithLease(6 * time.Second)}, 2 * time.Second},
		{"zero", []Option{WithCancelMargin(0)}, 0},
		{"half the lease", []Option{WithLease(6 * time.Second), WithCancelMargin(3 * time.Second)}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// New makes no request, so no server is needed.
			c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
			defer c.Close()
			d, err := New(c, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if d.margin != tc.want {
				t.Errorf("margin %v, want %v", d.margin, tc.want)
			}
		})
	}
}

// Invalid options are New's errors, never silently ignored.
func TestNewRefusesInvalidOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, tc := range []struct {
		name    string
		client  redis.UniversalClient
		opts    []Option
		wantErr string
	}{
		{"a nil client", nil, nil, "nil client"},
		{"a lease under a millisecond", c, []Option{WithLease(time.Microsecond)}, "WithLease: 1µs is under a millisecond"},
		{"a negative TTL", c, []Option{WithTTL(-time.Hour)}, "WithTTL: -1h0m0s is under a millisecond"},
		{"a negative margin", c, []Option{WithCancelMargin(-time.Second)}, "WithCancelMargin: -1s is negative"},
		{"a margin above half the lease", c, []Option{WithLease(6 * time.Second), WithCancelMargin(4 * time.Second)},
			"WithCancelMargin: 4s is above half the lease (6s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.client, tc.opts...)
			if d != nil || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New = %v, %v; want no Deduper and an error containing %q", d, err, tc.wantErr)
			}
		})
	}
}
