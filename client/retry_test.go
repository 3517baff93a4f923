package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
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

// An answer is what a throttlingServer answers: a status and a Retry-After.
type answer struct {
	status     int
	retryAfter string // "" sends none
}

// newThrottlingServer starts a server that gives the answers in order,
// then 204, and a Client that calls it with policy p and records its waits.
// It checks no signatures: what it tests happens before wechatpay-go
// validates an answer.
func newThrottlingServer(t *testing.T, p client.RetryPolicy, answers ...answer) (*client.Client, *sleeps) {
	t.Helper()
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		var a answer
		if len(answers) > 0 {
			a, answers = answers[0], answers[1:]
		}
		mu.Unlock()
		if a.status == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		fmt.Fprintf(w, `{"code":%q,"message":"test"}`, http.StatusText(a.status))
	}))
	t.Cleanup(srv.Close)
	api, err := core.NewClient(context.Background(), sharedMerchant().Credential(),
		option.WithoutValidator(), option.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	var s sleeps
	c, err := client.New(api, client.WithBaseURL(srv.URL), client.WithRetry(p), client.WithSleep(s.sleep))
	if err != nil {
		t.Fatal(err)
	}
	return c, &s
}

// TestRetry_retryAfter: a retried answer's Retry-After, in seconds or as
// an HTTP date, sets the wait when it is longer than the backoff, up to
// MaxRetryAfter; an unreadable or past one leaves the backoff.
func TestRetry_retryAfter(t *testing.T) {
	p := policy // waits of at most 250ms without Retry-After
	p.MaxRetryAfter = time.Minute
	backoff := func(d time.Duration) bool { return d >= policy.BaseDelay/2 && d <= policy.BaseDelay }
	exactly := func(want time.Duration) func(time.Duration) bool {
		return func(d time.Duration) bool { return d == want }
	}
	date := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name   string
		answer answer
		ok     func(time.Duration) bool
	}{
		{"429 with seconds", answer{http.StatusTooManyRequests, "3"}, exactly(3 * time.Second)},
		{"503 with seconds", answer{http.StatusServiceUnavailable, "7"}, exactly(7 * time.Second)},
		{"seconds over MaxRetryAfter are capped", answer{http.StatusTooManyRequests, "86400"}, exactly(time.Minute)},
		{"seconds too large to parse are capped", answer{http.StatusTooManyRequests, "99999999999999999999999"}, exactly(time.Minute)},
		{"429 with an HTTP date", answer{http.StatusTooManyRequests, date(20 * time.Second)}, func(d time.Duration) bool {
			return d > 10*time.Second && d <= 20*time.Second
		}},
		{"an HTTP date past MaxRetryAfter is capped", answer{http.StatusTooManyRequests, date(time.Hour)}, exactly(time.Minute)},
		{"an HTTP date in the past leaves the backoff", answer{http.StatusTooManyRequests, date(-time.Hour)}, backoff},
		{"zero seconds leaves the backoff", answer{http.StatusTooManyRequests, "0"}, backoff},
		{"a negative number leaves the backoff", answer{http.StatusTooManyRequests, "-5"}, backoff},
		{"an unreadable value leaves the backoff", answer{http.StatusTooManyRequests, "soon"}, backoff},
		{"no Retry-After leaves the backoff", answer{http.StatusTooManyRequests, ""}, backoff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newThrottlingServer(t, p, tt.answer)
			if err := c.SyncPoints(context.Background(), validPoints()); err != nil {
				t.Fatal(err)
			}
			if w := s.waits(); len(w) != 1 || !tt.ok(w[0]) {
				t.Errorf("waits = %v", w)
			}
		})
	}
}

// TestRetry_retryAfterDefaultCap: MaxRetryAfter defaults to
// DefaultMaxRetryAfter.
func TestRetry_retryAfterDefaultCap(t *testing.T) {
	c, s := newThrottlingServer(t, client.RetryPolicy{}, answer{http.StatusTooManyRequests, "3600"})
	if err := c.SyncPoints(context.Background(), validPoints()); err != nil {
		t.Fatal(err)
	}
	if w := s.waits(); len(w) != 1 || w[0] != client.DefaultMaxRetryAfter {
		t.Errorf("waits = %v, want [%v]", w, client.DefaultMaxRetryAfter)
	}
}

// TestRetry_retryAfterEndsWithContext: a long Retry-After does not outlast
// the call's ctx.
func TestRetry_retryAfterEndsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"code":"FREQUENCY_LIMITED","message":"频率超限"}`)
	}))
	defer srv.Close()
	api, err := core.NewClient(context.Background(), sharedMerchant().Credential(),
		option.WithoutValidator(), option.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(api, client.WithBaseURL(srv.URL), client.WithRetry(client.RetryPolicy{MaxRetryAfter: 2 * time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.SyncPoints(ctx, validPoints())
	var apiErr *core.APIError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
		t.Errorf("err = %v, want 429 and context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestAttempts: Attempts tells how many times a failed call was tried,
// through wrapping, and the *core.APIError stays reachable.
func TestAttempts(t *testing.T) {
	tests := []struct {
		name       string
		fail       func(*bizcircletest.APIServer)
		invalid    bool
		want       int
		wantStatus int // of the *core.APIError; 0 for none
	}{
		{"a refused request was never sent", nil, true, 0, 0},
		{"a 400 is tried once", func(s *bizcircletest.APIServer) { s.FailNext(1, bizcircletest.FailParamError) }, false, 1, 400},
		{"two 500s, then a 400", func(s *bizcircletest.APIServer) {
			s.FailNext(2, bizcircletest.FailSystemError)
			s.FailNext(1, bizcircletest.FailParamError)
		}, false, 3, 400},
		{"429s until MaxAttempts", func(s *bizcircletest.APIServer) { s.FailNext(10, bizcircletest.FailFrequencyLimited) }, false, 4, 429},
		{"network errors until MaxAttempts", func(s *bizcircletest.APIServer) { s.DisconnectNext(10) }, false, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sleeps
			srv, c := newFake(t, client.WithRetry(policy), client.WithSleep(s.sleep))
			r := validPoints()
			if tt.invalid {
				r.OpenID = ""
			} else {
				tt.fail(srv)
			}
			err := fmt.Errorf("awarding points: %w", c.SyncPoints(context.Background(), r))
			if got := client.Attempts(err); got != tt.want {
				t.Errorf("Attempts = %d, want %d (err = %v)", got, tt.want, err)
			}
			var apiErr *core.APIError
			if errors.As(err, &apiErr) != (tt.wantStatus != 0) || (apiErr != nil && apiErr.StatusCode != tt.wantStatus) {
				t.Errorf("err = %v, want a %d *core.APIError", err, tt.wantStatus)
			}
		})
	}
	t.Run("a success or a foreign error took none", func(t *testing.T) {
		for _, err := range []error{nil, errors.New("other"), context.Canceled} {
			if got := client.Attempts(err); got != 0 {
				t.Errorf("Attempts(%v) = %d, want 0", err, got)
			}
		}
	})
	t.Run("ctx stopped the retries after one", func(t *testing.T) {
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
		srv.FailNext(10, bizcircletest.FailSystemError)
		if got := client.Attempts(c.SyncPoints(ctx, validPoints())); got != 1 {
			t.Errorf("Attempts = %d, want 1", got)
		}
	})
}
