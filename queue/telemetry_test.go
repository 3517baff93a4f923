package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/riverqueue/river/rivertype"
)

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the records whose message is msg.
func (l *logBuffer) lines(msg string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var got []string
	for line := range strings.Lines(l.buf.String()) {
		if strings.Contains(line, `msg="`+msg+`"`) {
			got = append(got, strings.TrimSpace(line))
		}
	}
	return got
}

// deliveries records what a tracer would: each delivery's job and the
// outcomes observed in it.
type deliveries struct {
	mu   sync.Mutex
	jobs []bizcircle.Job
	seen []observed
}

type observed struct {
	job     string // the delivery's job ID
	outcome bizcircle.Outcome
	err     error
	event   string
}

type jobIDKey struct{}

func (d *deliveries) hook() bizcircle.Hook {
	return bizcircle.Hook{
		Start: func(ctx context.Context, dl bizcircle.Delivery) context.Context {
			if dl.Job == nil {
				return ctx // the receiving side's
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			d.jobs = append(d.jobs, *dl.Job)
			return context.WithValue(ctx, jobIDKey{}, dl.Job.ID)
		},
		Observe: func(ctx context.Context, o bizcircle.Observation) {
			id, ok := ctx.Value(jobIDKey{}).(string)
			if !ok {
				return
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			d.seen = append(d.seen, observed{id, o.Outcome, o.Err, o.EventType})
		},
	}
}

func (d *deliveries) observations() []observed {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]observed(nil), d.seen...)
}

// TestForgedRowIsARejectedDelivery: a stored notification that no longer
// verifies, or that sits under another event's key, is a rejected delivery
// to the observer and the hooks, with the job, and a warning in the log,
// at most one a minute however many rows come.
func TestForgedRowIsARejectedDelivery(t *testing.T) {
	e := newEnv(t)
	var logs logBuffer
	d := &deliveries{}
	q := e.newQueue(nil,
		queue.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		queue.WithBizcircle(bizcircle.WithHook(d.hook())))
	e.start(q)
	unsigned := func(p bizcircle.PaymentEvent) queue.NotificationArgs {
		a := argsOf(e.platform.Payment(p), paymentKey(p))
		a.Signed.Signature = "bm90IGEgc2lnbmF0dXJl"
		return a
	}
	underAnotherKey := func(p bizcircle.PaymentEvent) queue.NotificationArgs {
		return argsOf(e.platform.Payment(p), paymentKey(bizcircletest.SamplePayment()))
	}
	var ids []int64
	for _, row := range []struct {
		args    func(bizcircle.PaymentEvent) queue.NotificationArgs
		wantErr error
		name    string // its error.type
		event   string // the observed event type: only a verified one
	}{
		{unsigned, queue.ErrUnverified, "ErrUnverified", ""},
		{unsigned, queue.ErrUnverified, "ErrUnverified", ""},
		{underAnotherKey, queue.ErrKeyMismatch, "ErrKeyMismatch", bizcircle.EventPayment},
	} {
		res, err := q.River().Insert(context.Background(), row.args(bizcircletest.SamplePayment()), nil)
		if err != nil {
			t.Fatal(err)
		}
		e.waitState(q, res.Job.ID, rivertype.JobStateCancelled)
		ids = append(ids, res.Job.ID)
		id := strconv.FormatInt(res.Job.ID, 10)
		seen := d.observations()
		if len(seen) != len(ids) {
			t.Fatalf("%d outcomes observed in the workers' deliveries after %d forged rows: %v", len(seen), len(ids), seen)
		}
		got := seen[len(seen)-1]
		if got.job != id || got.outcome != bizcircle.OutcomeRejected || !errors.Is(got.err, row.wantErr) || got.event != row.event {
			t.Errorf("job %s: observed %+v, want rejected with %v in job %s, event type %q", id, got, row.wantErr, id, row.event)
		}
		var named interface{ ErrorType() string }
		if !errors.As(got.err, &named) || named.ErrorType() != row.name {
			t.Errorf("error %v does not name itself %s for error.type", got.err, row.name)
		}
	}
	want := make([]bizcircle.Job, len(ids))
	for i, id := range ids {
		want[i] = bizcircle.Job{System: "river", Queue: queue.QueueNotifications, ID: strconv.FormatInt(id, 10), Attempt: 1}
	}
	d.mu.Lock()
	if !reflect.DeepEqual(want, d.jobs) {
		t.Errorf("deliveries' jobs %+v, want %+v", d.jobs, want)
	}
	d.mu.Unlock()
	if got := e.outcomes.count(bizcircle.OutcomeRejected); got != 3 {
		t.Errorf("the observer saw %d rejections, want 3", got)
	}
	warnings := logs.lines("bizcircle: stored notification rejected")
	if len(warnings) != 1 || !strings.Contains(warnings[0], "level=WARN") || !strings.Contains(warnings[0], "job_id="+strconv.FormatInt(ids[0], 10)) ||
		!strings.Contains(warnings[0], queue.ErrUnverified.Error()) {
		t.Errorf("logged %q, want one warning naming the first job and %v", warnings, queue.ErrUnverified)
	}
}

// syncAttempts records what a tracer would of the sync worker: each
// attempt's job and result, and the WeChat Pay requests sent within it.
type syncAttempts struct {
	mu       sync.Mutex
	attempts []syncAttempt
}

type syncAttempt struct {
	Job      bizcircle.Job
	Result   client.SyncResult
	Err      string // the error's name for error.type
	Requests []int  // the statuses of the requests sent under the attempt's ctx
}

type attemptKey struct{}

func (s *syncAttempts) hook() client.SyncHook {
	return client.SyncHook{
		Start: func(ctx context.Context, j bizcircle.Job) context.Context {
			return context.WithValue(ctx, attemptKey{}, &syncAttempt{Job: j})
		},
		End: func(ctx context.Context, r client.SyncResult, err error) {
			a := ctx.Value(attemptKey{}).(*syncAttempt)
			a.Result = r
			var named interface{ ErrorType() string }
			if errors.As(err, &named) {
				a.Err = named.ErrorType()
			} else if err != nil {
				a.Err = "other"
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.attempts = append(s.attempts, *a)
		},
	}
}

// requests is the points client's Hook: it adds each request's status to
// the attempt whose ctx it runs in.
func (s *syncAttempts) requests() client.Hook {
	return client.Hook{Request: func(ctx context.Context, _ client.RequestInfo, send func(context.Context) (int, error)) {
		status, _ := send(ctx)
		if a, ok := ctx.Value(attemptKey{}).(*syncAttempt); ok {
			a.Requests = append(a.Requests, status)
		}
	}}
}

func (s *syncAttempts) all() []syncAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]syncAttempt(nil), s.attempts...)
}

// TestSyncHook: the sync worker runs its hooks around each attempt, the
// call to WeChat Pay within it, and tells each attempt's result.
func TestSyncHook(t *testing.T) {
	tests := []struct {
		name        string
		fail        func(*bizcircletest.APIServer)
		maxAttempts int
		state       rivertype.JobState
		want        []syncAttempt // Job.ID and Job.Attempt are filled in
	}{
		{"a sync WeChat Pay accepts is sent", func(*bizcircletest.APIServer) {}, 25, rivertype.JobStateCompleted,
			[]syncAttempt{{Result: client.SyncSent, Requests: []int{204}}}},
		{"a sync answered 500 is retried, then sent", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailSystemError) }, 25, rivertype.JobStateCompleted,
			[]syncAttempt{{Result: client.SyncRetried, Err: "other", Requests: []int{500}}, {Result: client.SyncSent, Requests: []int{204}}}},
		{"a sync refused with a 400 is refused", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailParamError) }, 25, rivertype.JobStateCancelled,
			[]syncAttempt{{Result: client.SyncRefused, Err: "ErrSyncRefused", Requests: []int{400}}}},
		{"a sync answered 500 on its last attempt is discarded", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailSystemError) }, 1, rivertype.JobStateDiscarded,
			[]syncAttempt{{Result: client.SyncDiscarded, Err: "other", Requests: []int{500}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			api := bizcircletest.NewAPIServer(e.platform, bizcircletest.NewMerchant())
			t.Cleanup(api.Close)
			s := &syncAttempts{}
			points, err := client.New(api.NewClient(), client.WithHook(s.requests()))
			if err != nil {
				t.Fatal(err)
			}
			q := e.newQueue(nil, queue.WithPointsClient(points, 1), queue.WithSyncHook(s.hook()), queue.WithMaxAttempts(tt.maxAttempts))
			tt.fail(api)
			e.start(q)
			id := enqueueSync(t, e, q, bizcircletest.SamplePayment())
			e.waitState(q, id, tt.state)
			for i := range tt.want {
				tt.want[i].Job = bizcircle.Job{System: "river", Queue: queue.QueueSync, ID: strconv.FormatInt(id, 10), Attempt: i + 1}
			}
			if got := s.all(); !reflect.DeepEqual(tt.want, got) {
				t.Errorf("attempts:\n%+v\nwant:\n%+v", got, tt.want)
			}
		})
	}
}
