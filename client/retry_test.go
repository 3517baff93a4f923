package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// sleeps records the waits asked for, without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

var policy = client.RetryPolicy{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: 250 * time.Millisecond}

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(*bizcircletest.APIServer)
		wantCalls int
		wantErr   int // status of the *core.APIError wanted; 0 for success
	}{
		{"429 twice, then success", func(s *bizcircletest.APIServer) { s.FailNext(2, bizcircletest.FailFrequencyLimited) }, 3, 0},
		{"500 once, then success", func(s *bizcircletest.APIServer) { s.FailNext(1, bizcircletest.FailSystemError) }, 2, 0},
		{"502 once, then success", func(s *bizcircletest.APIServer) {
			s.FailNext(1, bizcircletest.Failure{Status: http.StatusBadGateway, Code: "SYSTEM_ERROR"})
		}, 2, 0},
		{"network error, then success", func(s *bizcircletest.APIServer) { s.DisconnectNext(1) }, 2, 0},
		{"mixed failures, then success", func(s *bizcircletest.APIServer) {
			s.DisconnectNext(1)
			s.FailNext(1, bizcircletest.FailFrequencyLimited)
			s.FailNext(1, bizcircletest.FailSystemError)
		}, 4, 0},
		{"400 is not retried", func(s *bizcircletest.APIServer) { s.FailNext(1, bizcircletest.FailParamError) }, 1, 400},
		{"403 is not retried", func(s *bizcircletest.APIServer) {
			s.FailNext(1, bizcircletest.Failure{Status: http.StatusForbidden, Code: "NO_AUTH"})
		}, 1, 403},
		{"gives up after MaxAttempts", func(s *bizcircletest.APIServer) { s.FailNext(10, bizcircletest.FailSystemError) }, 4, 500},
		{"a 400 after a 500 ends the retries", func(s *bizcircletest.APIServer) {
			s.FailNext(1, bizcircletest.FailSystemError)
			s.FailNext(1, bizcircletest.FailParamError)
		}, 2, 400},
	}
	for _, m := range methods {
		for _, tt := range tests {
			t.Run(m.name+": "+tt.name, func(t *testing.T) {
				var s sleeps
				srv, c := newFake(t, client.WithRetry(policy), client.WithSleep(s.sleep))
				tt.fail(srv)
				err := m.call(context.Background(), c)
				if got := len(srv.Calls()); got != tt.wantCalls {
					t.Errorf("%d calls, want %d", got, tt.wantCalls)
				}
				if tt.wantErr == 0 {
					if err != nil {
						t.Fatal(err)
					}
				} else {
					var apiErr *core.APIError
					if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantErr {
						t.Fatalf("err = %v, want a %d *core.APIError", err, tt.wantErr)
					}
				}
				// Equal jitter: retry n waits between half and all of
				// min(100ms·2ⁿ⁻¹, 250ms).
				waits := s.waits()
				if len(waits) != tt.wantCalls-1 {
					t.Fatalf("%d waits, want %d", len(waits), tt.wantCalls-1)
				}
				for i, d := range waits {
					full := min(policy.BaseDelay<<i, policy.MaxDelay)
					if d < full/2 || d > full {
						t.Errorf("wait %d = %v, want in [%v, %v]", i+1, d, full/2, full)
					}
				}
			})
		}
	}
}

func TestRetry_offByDefault(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			srv, c := newFake(t)
			srv.DisconnectNext(1)
			if err := m.call(context.Background(), c); err == nil {
				t.Fatal("a dropped connection succeeded")
			}
			if n := len(srv.Calls()); n != 1 {
				t.Errorf("%d calls, want 1", n)
			}
		})
	}
}

func TestRetry_defaults(t *testing.T) {
	var s sleeps
	srv, c := newFake(t, client.WithRetry(client.RetryPolicy{}), client.WithSleep(s.sleep))
	srv.FailNext(10, bizcircletest.FailSystemError)
	err := c.SyncPoints(context.Background(), validPoints())
	if n := len(srv.Calls()); n != client.DefaultMaxAttempts {
		t.Errorf("%d calls, want %d", n, client.DefaultMaxAttempts)
	}
	if err == nil || !strings.Contains(err.Error(), "(attempt 3)") {
		t.Errorf("err = %v", err)
	}
	if w := s.waits(); len(w) != 2 || w[0] < client.DefaultBaseDelay/2 || w[0] > client.DefaultBaseDelay {
		t.Errorf("waits = %v", w)
	}
}

// TestRetry_stopsWithContext: a ctx that ends while waiting stops the
// retries; the error tells both why the last attempt failed and why
// retrying stopped.
func TestRetry_stopsWithContext(t *testing.T) {
	srv, _ := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(srv.NewClient(), client.WithRetry(policy), client.WithSleep(func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(10, bizcircletest.FailFrequencyLimited)
	err = c.SyncPoints(ctx, validPoints())
	var apiErr *core.APIError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
		t.Errorf("err = %v, want 429 and context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "retries stopped: context canceled") {
		t.Errorf("message %q", err)
	}
	if n := len(srv.Calls()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestRetry_realSleepEndsWithContext: the default sleep returns when ctx
// ends, not when the (hour-long) backoff does.
func TestRetry_realSleepEndsWithContext(t *testing.T) {
	srv, c := newFake(t, client.WithRetry(client.RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}))
	srv.FailNext(10, bizcircletest.FailSystemError)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.SyncPoints(ctx, validPoints())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestRetry_cancelledContextIsNotRetried: a call whose ctx is already
// cancelled fails without retrying.
func TestRetry_cancelledContextIsNotRetried(t *testing.T) {
	var s sleeps
	srv, c := newFake(t, client.WithRetry(policy), client.WithSleep(s.sleep))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := c.SyncPoints(ctx, validPoints())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if n := len(srv.Calls()) + len(s.waits()); n != 0 {
		t.Errorf("%d calls and waits, want none", n)
	}
}
