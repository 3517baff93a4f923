package queue_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// inAnHour retries failed jobs an hour later: a failed job stays retryable
// for the whole test.
type inAnHour struct{}

func (inAnHour) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Hour) }

// TestCancel cancels a payment's job in each state: waiting (available,
// scheduled) and retrying jobs are cancelled, listed as cancelled by Failed,
// and run no more; running, completed, discarded and cancelled ones are
// refused and left as they were.
func TestCancel(t *testing.T) {
	tests := []struct {
		name string
		// prepare delivers p and brings its job into the state under test;
		// started reports whether q's workers run.
		prepare func(t *testing.T, e *env, p bizcircle.PaymentEvent) (q *queue.Queue, id int64, started bool)
		wantErr error // nil: cancelled
		// wantRuns is how many times p's callback ran by the end.
		wantRuns int32
	}{
		{"an available job is cancelled", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			q := e.newQueue(nil) // no workers yet
			store(t, q, e, p)
			return q, e.jobByKey(paymentKey(p)).ID, false
		}, nil, 0},
		{"a scheduled job is cancelled", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			q := e.newQueue(nil)
			e.start(q)
			res, err := q.River().Insert(context.Background(),
				queue.NotificationArgs{Key: paymentKey(p), EventType: bizcircle.EventPayment, NotificationID: "scheduled"},
				&river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Job.State != rivertype.JobStateScheduled {
				t.Fatalf("inserted job is %s, want scheduled", res.Job.State)
			}
			return q, res.Job.ID, true
		}, nil, 0},
		{"a retrying job is cancelled", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			e.breakLedger()
			q := e.newQueue(nil, queue.WithRetryPolicy(inAnHour{}))
			e.start(q)
			store(t, q, e, p)
			return q, e.waitState(q, e.jobByKey(paymentKey(p)).ID, rivertype.JobStateRetryable).ID, true
		}, nil, 1},
		{"a running job is refused", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			entered, release := make(chan struct{}), make(chan struct{})
			var releaseOnce sync.Once
			e.mall.before = func(_ context.Context, key string, run int32) error {
				if key == paymentKey(p) && run == 1 {
					close(entered)
					<-release
				}
				return nil
			}
			q := e.newQueue(nil)
			e.start(q)
			store(t, q, e, p)
			select {
			case <-entered:
			case <-time.After(30 * time.Second):
				t.Fatal("the callback did not run within 30s")
			}
			id := e.jobByKey(paymentKey(p)).ID
			t.Cleanup(func() { // before the queue's Close
				releaseOnce.Do(func() { close(release) })
				e.waitState(q, id, rivertype.JobStateCompleted) // the refused cancel left it to finish
			})
			return q, id, true
		}, queue.ErrNotCancellable, 1},
		{"a completed job is refused", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			q := e.newQueue(nil)
			e.start(q)
			store(t, q, e, p)
			return q, e.waitState(q, e.jobByKey(paymentKey(p)).ID, rivertype.JobStateCompleted).ID, true
		}, queue.ErrNotCancellable, 1},
		{"a discarded job is refused", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			e.breakLedger()
			q := e.newQueue(nil, queue.WithMaxAttempts(1))
			e.start(q)
			store(t, q, e, p)
			return q, e.waitState(q, e.jobByKey(paymentKey(p)).ID, rivertype.JobStateDiscarded).ID, true
		}, queue.ErrNotCancellable, 1},
		{"a cancelled job is refused", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			q := e.newQueue(nil)
			store(t, q, e, p)
			id := e.jobByKey(paymentKey(p)).ID
			if _, err := q.Admin().Cancel(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			return q, id, false
		}, queue.ErrNotCancellable, 0},
		{"a job that does not exist is not found", func(t *testing.T, e *env, p bizcircle.PaymentEvent) (*queue.Queue, int64, bool) {
			return e.newQueue(nil), 1 << 50, false
		}, rivertype.ErrNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := bizcircletest.SamplePayment()
			q, id, started := tt.prepare(t, e, p)
			ctx := context.Background()
			before, _ := q.River().JobGet(ctx, id)

			job, err := q.Admin().Cancel(ctx, id)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Cancel = %+v, %v; want %v", job, err, tt.wantErr)
				}
				if before != nil {
					if after, err := q.River().JobGet(ctx, id); err != nil || after.State != before.State {
						t.Errorf("after a refused Cancel the job is %v (%v), want %s as before", after.State, err, before.State)
					}
				}
				if runs := e.mall.runCount(paymentKey(p)); runs > tt.wantRuns {
					t.Errorf("callback ran %d times, want at most %d", runs, tt.wantRuns)
				}
				return
			}
			if err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			if job.ID != id || job.State != rivertype.JobStateCancelled {
				t.Errorf("Cancel returned %+v, want job %d cancelled", job, id)
			}
			failed, err := q.Admin().Failed(ctx)
			if err != nil || len(failed) != 1 || failed[0].ID != id || failed[0].State != rivertype.JobStateCancelled {
				t.Errorf("Failed = %+v, %v; want job %d, cancelled", failed, err, id)
			}

			// Another payment processed after the cancel: the workers went
			// past the cancelled job without running it.
			e.mall.before = nil
			if !started {
				e.start(q)
			}
			other := bizcircletest.SamplePayment()
			store(t, q, e, other)
			e.waitState(q, e.jobByKey(paymentKey(other)).ID, rivertype.JobStateCompleted)
			if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != tt.wantRuns || rows != 0 {
				t.Errorf("cancelled payment: %d callback runs, %d ledger rows; want %d, 0", runs, rows, tt.wantRuns)
			}
			if row, err := q.River().JobGet(ctx, id); err != nil || row.State != rivertype.JobStateCancelled {
				t.Errorf("job %d is %v (%v), want cancelled", id, row.State, err)
			}
		})
	}
}

// store delivers p to q's endpoint and fails unless it was stored.
func store(t *testing.T, q *queue.Queue, e *env, p bizcircle.PaymentEvent) {
	t.Helper()
	if got := deliver(q.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
}

// TestChangedMeanwhile: a job that changes between the state check of
// Cancel or Replay and its update (another transaction updates it and
// commits while Cancel or Replay waits for the row) is refused, and left as
// that transaction made it.
func TestChangedMeanwhile(t *testing.T) {
	tests := []struct {
		name      string
		discard   bool   // bring the job to discarded first
		set       string // the state the other transaction sets
		op        func(*queue.Admin, context.Context, int64) (queue.Job, error)
		wantErr   error
		wantState rivertype.JobState
	}{
		{"Cancel of an available job a worker takes meanwhile", false, "running",
			(*queue.Admin).Cancel, queue.ErrNotCancellable, rivertype.JobStateRunning},
		{"Replay of a dead letter someone replays meanwhile", true, "available",
			(*queue.Admin).Replay, queue.ErrNotReplayable, rivertype.JobStateAvailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := bizcircletest.SamplePayment()
			q := e.newQueue(nil, queue.WithMaxAttempts(1))
			if tt.discard {
				e.breakLedger()
				e.start(q)
			}
			store(t, q, e, p)
			id := e.jobByKey(paymentKey(p)).ID
			if tt.discard {
				e.waitState(q, id, rivertype.JobStateDiscarded)
				if err := q.Close(); err != nil {
					t.Fatal(err)
				}
			}

			ctx := context.Background()
			other, err := e.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Rollback(ctx)
			var pid uint32
			if err := other.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Exec(ctx, `UPDATE `+pgx.Identifier{e.schema, "river_job"}.Sanitize()+
				` SET state = $2, finalized_at = NULL, attempted_at = now() WHERE id = $1`, id, tt.set); err != nil {
				t.Fatal(err)
			}
			type result struct {
				job queue.Job
				err error
			}
			done := make(chan result, 1)
			go func() {
				j, err := tt.op(q.Admin(), ctx, id)
				done <- result{j, err}
			}()
			waitBlockedBy(t, e, pid)
			if err := other.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if !errors.Is(r.err, tt.wantErr) || !strings.Contains(fmt.Sprint(r.err), "changed meanwhile") {
				t.Fatalf("got %+v, %v; want %v: changed meanwhile", r.job, r.err, tt.wantErr)
			}
			if row, err := q.River().JobGet(ctx, id); err != nil || row.State != tt.wantState {
				t.Errorf("job is %v (%v), want %s", row.State, err, tt.wantState)
			}
		})
	}
}

// waitBlockedBy polls until a session waits for a lock that the session
// with process ID pid holds.
func waitBlockedBy(t *testing.T, e *env, pid uint32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := e.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing waited for the other transaction's row lock within 30s")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// TestCorrectedSync: a sync WeChat Pay refused, then a corrected sync of the
// same payment. While the corrected one waits, Unsynced lists the payment
// once, by it; once WeChat Pay acknowledges it, not at all. Replaying the
// refused sync is refused (it was superseded) and sends nothing.
func TestCorrectedSync(t *testing.T) {
	e := newEnv(t)
	api, points := e.newAPI()
	api.FailNext(1, bizcircletest.FailParamError)
	q := e.newQueue(nil, queue.WithPointsClient(points, 1))
	e.start(q)
	p := bizcircletest.SamplePayment()
	refused := enqueueSync(t, e, q, p)
	e.waitState(q, refused, rivertype.JobStateCancelled)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	unsynced := func() string {
		t.Helper()
		jobs, err := q.Admin().Unsynced(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range jobs {
			got = append(got, fmt.Sprintf("%d %s %s", j.ID, j.TransactionID, j.State))
		}
		return strings.Join(got, "\n")
	}
	if got, want := unsynced(), fmt.Sprintf("%d %s cancelled", refused, p.TransactionID); got != want {
		t.Errorf("Unsynced after the refusal:\n%s\nwant:\n%s", got, want)
	}

	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		enqueued, err := q.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(&p, 3, time.Now()))
		if err == nil && !enqueued {
			err = errors.New("not enqueued")
		}
		return err
	})
	if err != nil {
		t.Fatalf("SyncPointsTx of the corrected sync: %v", err)
	}
	var corrected int64
	for _, j := range e.jobs(queue.KindSyncPoints) {
		corrected = max(corrected, j.ID)
	}
	if corrected == refused {
		t.Fatal("no corrected sync job")
	}
	if got, want := unsynced(), fmt.Sprintf("%d %s available", corrected, p.TransactionID); got != want {
		t.Errorf("Unsynced while the corrected sync waits:\n%s\nwant:\n%s", got, want)
	}

	q2 := e.newQueue(nil, queue.WithPointsClient(points, 1))
	e.start(q2)
	e.waitState(q2, corrected, rivertype.JobStateCompleted)
	if got := unsynced(); got != "" {
		t.Errorf("Unsynced after WeChat Pay acknowledged the corrected sync:\n%s\nwant none", got)
	}

	_, err = q2.Admin().Replay(ctx, refused)
	if !errors.Is(err, queue.ErrNotReplayable) || !strings.Contains(err.Error(), "superseded") {
		t.Fatalf("Replay of the superseded refused sync: %v; want ErrNotReplayable: superseded", err)
	}
	if row, err := q2.River().JobGet(ctx, refused); err != nil || row.State != rivertype.JobStateCancelled {
		t.Errorf("refused sync is %v (%v), want still cancelled", row.State, err)
	}
	if calls := syncCalls(api); calls[http.StatusBadRequest] != 1 || calls[http.StatusNoContent] != 1 || len(calls) != 2 {
		t.Errorf("points syncs by status %v, want one 400 and one 204", calls)
	}

	// River's cleaner deletes the completed corrected sync after the
	// completed-job retention (26 hours); the refused one, kept 30 days,
	// must still be neither listed nor replayable.
	e.deleteJob(corrected)
	if got := unsynced(); got != "" {
		t.Errorf("Unsynced after the corrected sync was cleaned up:\n%s\nwant none", got)
	}
	_, err = q2.Admin().Replay(ctx, refused)
	if !errors.Is(err, queue.ErrNotReplayable) || !strings.Contains(err.Error(), fmt.Sprintf("superseded by job %d", corrected)) {
		t.Fatalf("Replay of the refused sync after the cleanup: %v; want ErrNotReplayable: superseded by job %d", err, corrected)
	}
	if calls := syncCalls(api); len(calls) != 2 || calls[http.StatusBadRequest] != 1 || calls[http.StatusNoContent] != 1 {
		t.Errorf("points syncs by status %v after the cleanup, want still one 400 and one 204", calls)
	}
}

// TestCancelledNotificationRepushed: WeChat Pay's re-push of a cancelled
// payment is stored as a new job, which runs the callback once; replaying
// the cancelled one is refused (it was superseded).
func TestCancelledNotificationRepushed(t *testing.T) {
	e := newEnv(t)
	q := e.newQueue(nil)
	p := bizcircletest.SamplePayment()
	store(t, q, e, p)
	ctx := context.Background()
	old := e.jobByKey(paymentKey(p)).ID
	if _, err := q.Admin().Cancel(ctx, old); err != nil {
		t.Fatal(err)
	}
	store(t, q, e, p) // the re-push
	if n := e.outcomes.count(bizcircle.OutcomeStored); n != 2 {
		t.Fatalf("%d notifications stored, want 2: the re-push of a cancelled job is stored again", n)
	}
	_, err := q.Admin().Replay(ctx, old)
	if !errors.Is(err, queue.ErrNotReplayable) || !strings.Contains(err.Error(), "superseded") {
		t.Fatalf("Replay of the cancelled job: %v; want ErrNotReplayable: superseded", err)
	}
	e.start(q)
	for _, j := range e.jobs(queue.KindNotification) {
		if j.ID != old {
			e.waitState(q, j.ID, rivertype.JobStateCompleted)
		}
	}
	if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != 1 || rows != 1 {
		t.Errorf("%d callback runs, %d ledger rows; want 1, 1", runs, rows)
	}

	// After River's cleaner deletes the completed re-push, the cancelled
	// job still must not run the event again.
	for _, j := range e.jobs(queue.KindNotification) {
		if j.ID != old {
			e.deleteJob(j.ID)
		}
	}
	if _, err := q.Admin().Replay(ctx, old); !errors.Is(err, queue.ErrNotReplayable) || !strings.Contains(err.Error(), "superseded by job") {
		t.Fatalf("Replay of the cancelled job after the cleanup: %v; want ErrNotReplayable: superseded by job", err)
	}
	if runs := e.mall.runCount(paymentKey(p)); runs != 1 {
		t.Errorf("%d callback runs after the refused replay, want 1", runs)
	}
}
