package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// TestPaymentToSync is the loop: a payment's job awards points and
// enqueues the sync in its transaction; the sync worker sends it; the fake
// WeChat Pay API acknowledges it once; nothing is left unsynced.
func TestPaymentToSync(t *testing.T) {
	e := newEnv(t)
	api, points := e.newAPI()
	q := e.newQueue(nil, queue.WithPointsClient(points, 2))
	e.mall.syncs = q
	e.start(q)
	p := bizcircletest.SamplePayment()
	if got := deliver(q.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	e.waitState(q, e.onlyJob(queue.KindNotification).ID, rivertype.JobStateCompleted)
	e.waitState(q, e.onlyJob(queue.KindSyncPoints).ID, rivertype.JobStateCompleted)
	if calls := syncCalls(api); calls[http.StatusNoContent] != 1 || len(calls) != 1 {
		t.Errorf("points syncs by status %v, want one 204", calls)
	}
	c, _ := api.LastCall()
	if c.JSON["transaction_id"] != p.TransactionID || c.JSON["openid"] != p.OpenID || c.JSON["increased_points"] != json.Number("2") {
		t.Errorf("sync sent %s, want the payment's transaction, OpenID and 2 points", c.Body)
	}
	if unsynced, err := q.Admin().Unsynced(context.Background()); err != nil || len(unsynced) != 0 {
		t.Errorf("Unsynced = %v, %v; want none", unsynced, err)
	}

	// A second sync of the transaction is refused as a duplicate.
	tx, err := e.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	enqueued, err := q.SyncPointsTx(context.Background(), tx, client.NewSyncPointsRequest(&p, 99, time.Now()))
	if err != nil || enqueued {
		t.Errorf("SyncPointsTx of a synced transaction = %v, %v; want false, nil", enqueued, err)
	}
}

// riverClock is a bizcircletest.Clock as River's time generator: River
// schedules retries by it.
type riverClock struct{ c *bizcircletest.Clock }

func (r riverClock) Now() time.Time       { return r.c.Now() }
func (r riverClock) NowOrNil() *time.Time { t := r.c.Now(); return &t }

// TestSyncOutageForADay: WeChat Pay's API fails (5xx, 429, dropped
// connections) for a simulated day, on River's default retry schedule
// driven by a fake clock; the sync is sent again at each scheduled retry and
// acknowledged exactly once after the recovery, long before its attempts
// run out.
func TestSyncOutageForADay(t *testing.T) {
	e := newEnv(t)
	api, points := e.newAPI()
	clock := bizcircletest.NewClock(time.Now())
	q := e.newQueue(nil, queue.WithPointsClient(points, 1),
		queue.WithRetryPolicy(&river.DefaultClientRetryPolicy{}), // attempt⁴ seconds, by River's clock
		queue.WithRiverConfig(func(c *river.Config) { c.Test.Time = riverClock{clock} }))
	e.start(q)

	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := bizcircletest.SamplePayment()
	if _, err := q.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(&p, 2, time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	outageEnds := clock.Now().Add(24 * time.Hour)
	failures := []func(){
		func() { api.FailNext(1, bizcircletest.FailSystemError) },
		func() { api.FailNext(1, bizcircletest.FailFrequencyLimited) },
		func() { api.DisconnectNext(1) },
	}
	id := e.onlyJob(queue.KindSyncPoints).ID
	for attempt := 1; ; attempt++ {
		if clock.Now().Before(outageEnds) {
			failures[attempt%len(failures)]()
		}
		if attempt > 1 {
			// The retry is due: do what River's scheduler does at this time.
			if _, err := q.River().JobRetry(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		job := e.waitSettled(q, id, attempt)
		if job.State == rivertype.JobStateCompleted {
			t.Logf("synced on attempt %d of %d, %v after the first", attempt, job.MaxAttempts, clock.Now().Sub(outageEnds.Add(-24*time.Hour)).Round(time.Second))
			if clock.Now().Before(outageEnds) {
				t.Errorf("synced during the outage")
			}
			break
		}
		// Retries due within River's scheduler interval are available at
		// once, scheduled in the (fake) future; later ones are retryable.
		if job.State != rivertype.JobStateRetryable && job.State != rivertype.JobStateAvailable {
			t.Fatalf("attempt %d: job %s, want a retry (errors %v)", attempt, job.State, job.Errors)
		}
		clock.Advance(job.ScheduledAt.Sub(clock.Now()))
	}
	calls := syncCalls(api)
	if calls[http.StatusNoContent] != 1 || calls[0] == 0 || calls[http.StatusInternalServerError] == 0 || calls[http.StatusTooManyRequests] == 0 {
		t.Errorf("points syncs by status %v, want each failure and exactly one 204", calls)
	}
}

// waitSettled waits until attempt of job id has finished: the job
// completed, or is not running and has attempt errors.
func (e *env) waitSettled(q riverOf, id int64, attempt int) *rivertype.JobRow {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		row, err := q.River().JobGet(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if row.State == rivertype.JobStateCompleted || (row.State != rivertype.JobStateRunning && len(row.Errors) >= attempt) {
			return row
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("job %d: %s at attempt %d after 30s, want attempt %d settled", id, row.State, row.Attempt, attempt)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// TestSyncAnswers: what each answer of WeChat Pay does to a sync: 5xx, 429
// and network errors are retried (then acknowledged once); other 4xx cancel
// the job at once, with WeChat Pay's code and message recorded.
func TestSyncAnswers(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(api *bizcircletest.APIServer)
		wantState rivertype.JobState
		wantErr   string
	}{
		{"500 SYSTEM_ERROR is retried", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailSystemError) },
			rivertype.JobStateCompleted, "SYSTEM_ERROR"},
		{"429 FREQUENCY_LIMITED is retried", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailFrequencyLimited) },
			rivertype.JobStateCompleted, "FREQUENCY_LIMITED"},
		{"a dropped connection is retried", func(a *bizcircletest.APIServer) { a.DisconnectNext(1) },
			rivertype.JobStateCompleted, "SyncPoints"},
		{"400 PARAM_ERROR cancels", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailParamError) },
			rivertype.JobStateCancelled, "400 PARAM_ERROR: 参数错误"},
		{"401 SIGN_ERROR cancels", func(a *bizcircletest.APIServer) {
			a.FailNext(1, bizcircletest.Failure{Status: http.StatusUnauthorized, Code: "SIGN_ERROR", Message: "签名错误"})
		}, rivertype.JobStateCancelled, "401 SIGN_ERROR: 签名错误"},
		{"403 NO_AUTH cancels", func(a *bizcircletest.APIServer) {
			a.FailNext(1, bizcircletest.Failure{Status: http.StatusForbidden, Code: "NO_AUTH", Message: "商户无权限"})
		}, rivertype.JobStateCancelled, "403 NO_AUTH: 商户无权限"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			api, points := e.newAPI()
			q := e.newQueue(nil, queue.WithPointsClient(points, 1))
			tt.fail(api)
			e.start(q)
			p := bizcircletest.SamplePayment()
			id := enqueueSync(t, e, q, p)
			job := e.waitState(q, id, tt.wantState)
			calls := syncCalls(api)
			if len(job.Errors) != 1 || !strings.Contains(job.Errors[0].Error, tt.wantErr) {
				t.Errorf("errors %v, want one mentioning %q", job.Errors, tt.wantErr)
			}
			if tt.wantState == rivertype.JobStateCompleted {
				if calls[http.StatusNoContent] != 1 {
					t.Errorf("points syncs by status %v, want one 204 after the failure", calls)
				}
				return
			}
			if n := len(api.CallsTo(bizcircletest.PathPointsNotify)); n != 1 {
				t.Errorf("%d sync calls, want 1: a refused sync is not retried", n)
			}
			var out struct {
				Output queue.SyncRefusal `json:"output"`
			}
			if err := json.Unmarshal(job.Metadata, &out); err != nil || !strings.Contains(tt.wantErr, out.Output.Code) || out.Output.Status < 400 {
				t.Errorf("metadata %s, want the refusal as output", job.Metadata)
			}
			ctx := context.Background()
			for _, list := range []func(context.Context) ([]queue.Job, error){q.Admin().Failed, q.Admin().Unsynced} {
				jobs, err := list(ctx)
				if err != nil || len(jobs) != 1 || jobs[0].TransactionID != p.TransactionID || !strings.Contains(jobs[0].LastError, tt.wantErr) {
					t.Errorf("listed %+v, %v; want the refused sync of %s", jobs, err, p.TransactionID)
				}
			}
		})
	}
}

// enqueueSync enqueues a sync of payment p in its own transaction and
// returns its job ID.
func enqueueSync(t *testing.T, e *env, q syncer, p bizcircle.PaymentEvent) int64 {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		enqueued, err := q.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(&p, 2, time.Now()))
		if err == nil && !enqueued {
			err = errors.New("not enqueued")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range e.jobs(queue.KindSyncPoints) {
		var a queue.SyncPointsArgs
		if json.Unmarshal(j.EncodedArgs, &a) == nil && a.TransactionID == p.TransactionID {
			return j.ID
		}
	}
	t.Fatalf("no sync job for %s", p.TransactionID)
	return 0
}

// TestSyncFromPgdedupe: the outbox on its own, from a pgdedupe callback
// and without a notification queue. The callback writes its ledger row and
// enqueues the sync in pgdedupe's transaction: when it fails afterwards,
// neither is left; WeChat Pay's retry leaves one of each, and the Outbox's
// sync worker sends exactly one sync. Later duplicates add nothing.
func TestSyncFromPgdedupe(t *testing.T) {
	e := newEnv(t)
	api, points := e.newAPI()
	ob := e.newOutbox(queue.WithPointsClient(points, 1))
	e.mall.syncs = ob
	e.mall.before = func(_ context.Context, _ string, run int32) error {
		if run == 1 {
			return errors.New("loyalty service down") // after the row and the sync
		}
		return nil
	}
	h, err := bizcircle.New(e.platform.APIv3Key, e.platform.Verifier(), e.mall,
		bizcircle.WithDeduper(pgPrior(e)), bizcircle.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	p := bizcircletest.SamplePayment()
	msg := e.platform.Payment(p)
	if got := deliver(h, msg); got != http.StatusInternalServerError {
		t.Fatalf("first delivery: status %d, want 500", got)
	}
	if rows, jobs := e.mall.ledger.rows(t, paymentKey(p)), e.jobs(queue.KindSyncPoints); rows != 0 || len(jobs) != 0 {
		t.Fatalf("after the failed callback: %d ledger rows, %d sync jobs; want 0, 0", rows, len(jobs))
	}
	if got := deliver(h, msg); got != http.StatusNoContent {
		t.Fatalf("retry: status %d, want 204", got)
	}
	e.start(ob)
	e.waitState(ob, e.onlyJob(queue.KindSyncPoints).ID, rivertype.JobStateCompleted)
	for range 2 {
		if got := deliver(h, e.platform.Payment(p)); got != http.StatusNoContent {
			t.Fatalf("re-push: status %d, want 204", got)
		}
	}
	if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != 2 || rows != 1 {
		t.Errorf("%d callback runs, %d ledger rows; want 2 (one failed), 1", runs, rows)
	}
	if jobs := e.jobs(queue.KindSyncPoints); len(jobs) != 1 {
		t.Errorf("%d sync jobs, want 1", len(jobs))
	}
	if calls := syncCalls(api); calls[http.StatusNoContent] != 1 || len(calls) != 1 {
		t.Errorf("points syncs by status %v, want one 204", calls)
	}
	if c, _ := api.LastCall(); c.JSON["transaction_id"] != p.TransactionID || c.JSON["openid"] != p.OpenID {
		t.Errorf("sync sent %s, want the payment's transaction and OpenID", c.Body)
	}
	if unsynced, err := ob.Admin().Unsynced(context.Background()); err != nil || len(unsynced) != 0 {
		t.Errorf("Unsynced = %v, %v; want none", unsynced, err)
	}
}

// TestOutboxAndQueueShareSyncs: syncs an Outbox enqueued are sent by a
// Queue's sync worker with the same APIv3 key, and the other way round, so
// a mall switching modes keeps its pending syncs.
func TestOutboxAndQueueShareSyncs(t *testing.T) {
	e := newEnv(t)
	api, points := e.newAPI()
	fromOutbox, fromQueue := bizcircletest.SamplePayment(), bizcircletest.SamplePayment()
	enqueueSync(t, e, e.newOutbox(), fromOutbox) // enqueues only
	enqueueSync(t, e, e.newQueue(nil), fromQueue)
	q := e.newQueue(nil, queue.WithPointsClient(points, 1))
	e.start(q)
	for _, j := range e.jobs(queue.KindSyncPoints) {
		e.waitState(q, j.ID, rivertype.JobStateCompleted)
	}
	if err := q.Close(); err != nil { // the Outbox alone sends from here on
		t.Fatal(err)
	}
	ob := e.newOutbox(queue.WithPointsClient(points, 1))
	e.start(ob)
	p := bizcircletest.SamplePayment()
	e.waitState(ob, enqueueSync(t, e, q, p), rivertype.JobStateCompleted)
	sent := map[any]int{}
	for _, c := range api.CallsTo(bizcircletest.PathPointsNotify) {
		if c.Status == http.StatusNoContent {
			sent[c.JSON["transaction_id"]]++
		}
	}
	for _, id := range []string{fromOutbox.TransactionID, fromQueue.TransactionID, p.TransactionID} {
		if sent[id] != 1 {
			t.Errorf("sync of %s acknowledged %d times, want 1 (all: %v)", id, sent[id], sent)
		}
	}
}

// TestSyncForged: a sync job written by someone without the APIv3 key, or
// moved to another transaction, sends nothing.
func TestSyncForged(t *testing.T) {
	e := newEnv(t)
	api, points := e.newAPI()
	q := e.newQueue(nil, queue.WithPointsClient(points, 1))
	e.start(q)
	ctx := context.Background()

	// A sync sealed under another APIv3 key.
	attacker, err := queue.New(e.pool, bizcircletest.RandomAPIv3Key(), e.platform.Verifier(), e.mall,
		queue.WithSchema(e.schema), queue.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	forged := enqueueSync(t, e, attacker, bizcircletest.SamplePayment())

	// A genuine sync's sealed request under another transaction_id.
	genuine := bizcircletest.SamplePayment()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(&genuine, 2, time.Now())); err != nil {
		t.Fatal(err)
	}
	rows, err := q.River().JobListTx(ctx, tx, river.NewJobListParams().Kinds(queue.KindSyncPoints).States(rivertype.JobStateAvailable))
	if err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	var a queue.SyncPointsArgs
	for _, r := range rows.Jobs {
		if json.Unmarshal(r.EncodedArgs, &a); a.TransactionID == genuine.TransactionID {
			break
		}
	}
	a.TransactionID = "4200" + strconv.FormatInt(time.Now().UnixNano(), 10)
	moved, err := q.River().Insert(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}

	for _, id := range []int64{forged, moved.Job.ID} {
		job := e.waitState(q, id, rivertype.JobStateCancelled)
		if len(job.Errors) != 1 || !strings.Contains(job.Errors[0].Error, queue.ErrSealed.Error()) {
			t.Errorf("job %d errors %v, want %v", id, job.Errors, queue.ErrSealed)
		}
	}
	if n := len(api.CallsTo(bizcircletest.PathPointsNotify)); n != 0 {
		t.Errorf("%d syncs sent, want 0", n)
	}
}

// TestUnsynced lists the payments WeChat Pay has not acknowledged a sync
// of, oldest first: a payment whose callback keeps failing, then a sync
// WeChat Pay keeps refusing with 5xx.
func TestUnsynced(t *testing.T) {
	e := newEnv(t)
	api, points := e.newAPI()
	stuck, failing, fine := bizcircletest.SamplePayment(), bizcircletest.SamplePayment(), bizcircletest.SamplePayment()
	e.mall.before = func(_ context.Context, key string, _ int32) error {
		if key == paymentKey(stuck) {
			return errors.New("ledger offline")
		}
		return nil
	}
	q := e.newQueue(nil, queue.WithPointsClient(points, 1), queue.WithMaxAttempts(2))
	e.mall.syncs = q
	api.FailNext(2, bizcircletest.FailSystemError) // the first sync's two attempts
	e.start(q)
	if got := deliver(q.Endpoint(), e.platform.Payment(stuck)); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	e.waitState(q, e.onlyJob(queue.KindNotification).ID, rivertype.JobStateDiscarded)
	if got := deliver(q.Endpoint(), e.platform.Payment(failing)); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	e.waitState(q, e.jobByKey(paymentKey(failing)).ID, rivertype.JobStateCompleted)
	e.waitState(q, e.onlyJob(queue.KindSyncPoints).ID, rivertype.JobStateDiscarded)
	if got := deliver(q.Endpoint(), e.platform.Payment(fine)); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	e.waitState(q, e.jobByKey(paymentKey(fine)).ID, rivertype.JobStateCompleted)
	for _, j := range e.jobs(queue.KindSyncPoints) {
		if j.State != rivertype.JobStateDiscarded {
			e.waitState(q, j.ID, rivertype.JobStateCompleted)
		}
	}

	unsynced, err := q.Admin().Unsynced(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range unsynced {
		got = append(got, fmt.Sprintf("%s %s %s", j.EventType, j.TransactionID, j.State))
	}
	want := []string{
		bizcircle.EventPayment + " " + stuck.TransactionID + " discarded",
		queue.EventSync + " " + failing.TransactionID + " discarded",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Unsynced:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
