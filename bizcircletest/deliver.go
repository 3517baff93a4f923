package bizcircletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle/internal/ctxsleep"
)

// RetrySchedule returns WeChat Pay's delays between successive deliveries of
// a payment or refund notification that was not acknowledged (see
// [Attempt.OK]):
// 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h. With
// the first delivery that makes 16 attempts, the last 24h4m after the first.
// Each call returns a fresh slice.
func RetrySchedule() []time.Duration {
	return []time.Duration{
		15 * time.Second, 15 * time.Second, 30 * time.Second,
		3 * time.Minute, 10 * time.Minute, 20 * time.Minute,
		30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
		3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
	}
}

// DefaultAttemptTimeout is how long a Deliverer waits for each answer:
// WeChat Pay expects one within 5 seconds.
const DefaultAttemptTimeout = 5 * time.Second

// ErrNotAcknowledged is returned by [Deliverer.Deliver] and
// [Deliverer.DeliverURL] when no attempt was acknowledged with 200 or 204.
var ErrNotAcknowledged = errors.New("bizcircletest: notification not acknowledged after the last retry")

// An Attempt is one delivery of a notification and its answer.
type Attempt struct {
	// N is the attempt's number, 1 for the first delivery.
	N int
	// Offset is when the attempt was scheduled, after the first one
	// (0, 15s, 30s, 1m, 4m, …, 24h4m on WeChat Pay's schedule).
	Offset time.Duration
	// Status is the answer's HTTP status; 0 when Err is set.
	Status int
	// Header and Body are the answer's.
	Header http.Header
	Body   []byte
	// Latency is the time from sending the request to reading the answer,
	// by the real clock.
	Latency time.Duration
	// Err is the transport error of a delivery to a URL (connection
	// refused, timeout); an attempt with Err is retried like a failure.
	Err error
}

// OK reports whether the attempt was acknowledged. WeChat Pay accepts
// only 200 OK and 204 No Content: any other status, other 2xx included
// (201, 202), is a failure it retries.
func (a Attempt) OK() bool { return a.Err == nil && Acknowledged(a.Status) }

// Acknowledged reports whether WeChat Pay takes an answer with status as a
// notification received: 200 or 204, and nothing else.
func Acknowledged(status int) bool {
	return status == http.StatusOK || status == http.StatusNoContent
}

// A Deliverer delivers one notification the way WeChat Pay does: again and
// again on its retry schedule until an attempt is answered with 200 or 204,
// re-signing each attempt with the platform's current time and a fresh
// nonce (the body, and so the notification ID, stays the same). Tests make
// the schedule instant by setting Sleep, usually to a [Clock]'s.
//
// The zero Deliverer sends the message unchanged, on [RetrySchedule], with
// real sleeps. A Deliverer is safe for concurrent use while its fields are
// not changed.
type Deliverer struct {
	// Platform re-signs each attempt with its clock (Platform.Now), as WeChat
	// Pay does. When nil, every attempt sends the Message as it is.
	Platform *Platform
	// Schedule is the delays between attempts; it makes len(Schedule)+1
	// attempts. Default (nil): [RetrySchedule].
	Schedule []time.Duration
	// Sleep waits d between attempts, returning early with ctx's error.
	// Default (nil): a real sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// Target is the request target of deliveries to a handler, for a
	// handler that routes by path. Default (""): "/".
	Target string
	// Client sends deliveries to URLs. Default (nil): http.DefaultClient.
	Client *http.Client
	// Timeout bounds each attempt through its request's context.
	// Default (0): [DefaultAttemptTimeout].
	Timeout time.Duration
	// OnAttempt, when set, is called after each attempt, before the
	// sleep that precedes the next one.
	OnAttempt func(Attempt)
}

// Deliver delivers m to h, each attempt through ServeHTTP with a recorder.
// It returns every attempt, and nil exactly when the last one got 200 or 204;
// else ErrNotAcknowledged after the last attempt, or ctx's error.
func (d *Deliverer) Deliver(ctx context.Context, h http.Handler, m *Message) ([]Attempt, error) {
	target := d.Target
	if target == "" {
		target = "/"
	}
	return d.deliver(ctx, m, func(ctx context.Context, m *Message) Attempt {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, m.Request(target).WithContext(ctx))
		res := rec.Result()
		return Attempt{Status: res.StatusCode, Header: res.Header, Body: rec.Body.Bytes(), Latency: time.Since(start)}
	})
}

// DeliverURL delivers m by POSTing it to url, like Deliver.
func (d *Deliverer) DeliverURL(ctx context.Context, url string, m *Message) ([]Attempt, error) {
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	return d.deliver(ctx, m, func(ctx context.Context, m *Message) Attempt {
		req, err := m.NewRequest(ctx, url)
		if err != nil {
			return Attempt{Err: err}
		}
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return Attempt{Err: err, Latency: time.Since(start)}
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		a := Attempt{Status: res.StatusCode, Header: res.Header, Body: body, Latency: time.Since(start)}
		if err != nil {
			a.Status, a.Err = 0, fmt.Errorf("bizcircletest: reading answer: %w", err)
		}
		return a
	})
}

func (d *Deliverer) deliver(ctx context.Context, m *Message, send func(context.Context, *Message) Attempt) ([]Attempt, error) {
	schedule := d.Schedule
	if schedule == nil {
		schedule = RetrySchedule()
	}
	sleep := d.Sleep
	if sleep == nil {
		sleep = ctxsleep.Sleep
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultAttemptTimeout
	}
	var (
		attempts []Attempt
		offset   time.Duration
	)
	for i := 0; i <= len(schedule); i++ {
		if i > 0 {
			if err := sleep(ctx, schedule[i-1]); err != nil {
				return attempts, err
			}
			offset += schedule[i-1]
		}
		if err := ctx.Err(); err != nil {
			return attempts, err
		}
		msg := m
		if d.Platform != nil {
			msg = d.Platform.Resign(m)
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		a := send(actx, msg)
		cancel()
		a.N, a.Offset = i+1, offset
		attempts = append(attempts, a)
		if d.OnAttempt != nil {
			d.OnAttempt(a)
		}
		if a.OK() {
			return attempts, nil
		}
	}
	return attempts, ErrNotAcknowledged
}

// Resign returns a copy of m signed again with the platform's current time
// and a fresh nonce and Request-ID: what WeChat Pay sends when it retries m.
// The body, and so the notification ID, is unchanged.
func (p *Platform) Resign(m *Message) *Message {
	c := m.Clone()
	c.Header = p.Signed(bytes.Clone(m.Body)).Header
	return c
}

// A Clock is a fake clock for tests: time stands still until Sleep or
// Advance moves it, and Sleep returns at once. Share one between a
// [Platform] (Platform.Now), the handler under test (bizcircle.WithClock) and a [Deliverer] (Deliverer.Sleep) to replay
// WeChat Pay's day of retries in microseconds. A Clock is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sleep advances the clock by d and returns at once, or returns ctx's error
// without advancing when ctx is done. Its signature fits Deliverer.Sleep.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}
