package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// TestStoreThenProcess: the endpoint answers 204 having stored one job and
// run nothing; the worker then runs the callback once with the Notification,
// the job's transaction and the receiving side's Meta in its context.
func TestStoreThenProcess(t *testing.T) {
	e := newEnv(t)
	q := e.newQueue(nil)
	p := bizcircletest.SamplePayment()
	msg := e.platform.Payment(p)
	var meta map[string]string
	e.mall.before = func(ctx context.Context, _ string, _ int32) error {
		j, ok := queue.JobFromContext(ctx)
		if !ok {
			return errors.New("no job in the callback's context")
		}
		meta = j.Meta
		return nil
	}

	if got := deliver(q.Endpoint(), msg); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	if got := e.outcomes.count(bizcircle.OutcomeStored); got != 1 {
		t.Errorf("%d stored outcomes, want 1", got)
	}
	job := e.onlyJob(queue.KindNotification)
	if job.State != rivertype.JobStateAvailable || e.mall.runCount(paymentKey(p)) != 0 {
		t.Fatalf("before any worker: job %s, %d callback runs; want available, 0", job.State, e.mall.runCount(paymentKey(p)))
	}

	e.start(q)
	e.waitState(q, job.ID, rivertype.JobStateCompleted)
	if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != 1 || rows != 1 {
		t.Errorf("%d callback runs, %d ledger rows; want 1, 1", runs, rows)
	}
	if got := e.outcomes.count(bizcircle.OutcomeProcessed); got != 1 {
		t.Errorf("%d processed outcomes, want 1", got)
	}
	if want := msg.Header.Get(bizcircle.HeaderRequestID); meta["request_id"] != want {
		t.Errorf("Meta %v, want request_id %s", meta, want)
	}
}

// TestConcurrentDuplicatesTwoReplicas: 100 deliveries of one payment (two
// notifications of it, as a re-push has a new notification ID) race through
// two endpoint replicas while two workers run: one job, one callback run,
// one ledger row, every delivery answered 204. Duplicates after completion
// get 204 and change nothing.
func TestConcurrentDuplicatesTwoReplicas(t *testing.T) {
	e := newEnv(t)
	replicas := []*queue.Queue{e.newQueue(newPool(t, "", 8)), e.newQueue(newPool(t, "", 8))}
	for _, q := range replicas {
		e.start(q)
	}
	p := bizcircletest.SamplePayment()
	msgs := []*bizcircletest.Message{e.platform.Payment(p), e.platform.Payment(p)}

	const n = 100
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = deliver(replicas[i%2].Endpoint(), msgs[(i/2)%2])
		})
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusNoContent {
			t.Errorf("delivery %d: status %d, want 204", i, s)
		}
	}
	job := e.onlyJob(queue.KindNotification)
	e.waitState(replicas[0], job.ID, rivertype.JobStateCompleted)
	if stored, dups := e.outcomes.count(bizcircle.OutcomeStored), e.outcomes.count(bizcircle.OutcomeDuplicate); stored != 1 || dups != n-1 {
		t.Errorf("%d stored, %d duplicates; want 1, %d", stored, dups, n-1)
	}

	for i := range 10 {
		if got := deliver(replicas[i%2].Endpoint(), msgs[i%2]); got != http.StatusNoContent {
			t.Errorf("delivery after completion: status %d, want 204", got)
		}
	}
	if jobs := e.jobs(queue.KindNotification); len(jobs) != 1 {
		t.Errorf("%d jobs after the late duplicates, want 1", len(jobs))
	}
	if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != 1 || rows != 1 {
		t.Errorf("%d callback runs, %d ledger rows; want 1, 1", runs, rows)
	}
}

// TestRetries: whatever stops an attempt after the callback wrote its
// ledger row rolls the row back, and River runs the job again until it
// succeeds: exactly one row in the end.
func TestRetries(t *testing.T) {
	errLedger := errors.New("points service down")
	tests := []struct {
		name     string
		before   func(ctx context.Context, e *env, run int32) error
		wantRuns int32
		wantErr  string // in the first attempt's recorded error
	}{
		{
			name: "the callback fails three times, then succeeds",
			before: func(_ context.Context, _ *env, run int32) error {
				if run <= 3 {
					return errLedger
				}
				return nil
			},
			wantRuns: 4,
			wantErr:  "points service down",
		},
		{
			name: "the callback panics once",
			before: func(_ context.Context, _ *env, run int32) error {
				if run == 1 {
					panic("points service bug")
				}
				return nil
			},
			wantRuns: 2,
			wantErr:  "callback panicked",
		},
		{
			name: "the job's connection is terminated before the job completes",
			before: func(ctx context.Context, e *env, run int32) error {
				if run > 1 {
					return nil
				}
				tx, _ := queue.Tx(ctx)
				var pid int
				if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
					return err
				}
				_, err := e.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid)
				return err // nil: the callback succeeded, finishing the job cannot
			},
			wantRuns: 2,
			wantErr:  "terminating connection due to administrator command",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.mall.before = func(ctx context.Context, _ string, run int32) error { return tt.before(ctx, e, run) }
			q := e.newQueue(nil)
			e.start(q)
			p := bizcircletest.SamplePayment()
			if got := deliver(q.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
				t.Fatalf("status %d, want 204", got)
			}
			job := e.waitState(q, e.onlyJob(queue.KindNotification).ID, rivertype.JobStateCompleted)
			if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != tt.wantRuns || rows != 1 {
				t.Errorf("%d callback runs, %d ledger rows; want %d, 1", runs, rows, tt.wantRuns)
			}
			if job.Attempt != int(tt.wantRuns) || len(job.Errors) != int(tt.wantRuns)-1 {
				t.Errorf("attempt %d with %d errors, want %d with %d", job.Attempt, len(job.Errors), tt.wantRuns, tt.wantRuns-1)
			}
			if len(job.Errors) > 0 && !strings.Contains(job.Errors[0].Error, tt.wantErr) {
				t.Errorf("first error %q, want it to mention %q", job.Errors[0].Error, tt.wantErr)
			}
		})
	}
}

// TestWorkerStoppedMidJob: a worker process stopping while a callback runs
// cancels the callback's context, rolls its writes back and leaves the job
// to another process, which processes it once.
func TestWorkerStoppedMidJob(t *testing.T) {
	e := newEnv(t)
	running := make(chan struct{})
	e.mall.before = func(ctx context.Context, _ string, run int32) error {
		if run > 1 {
			return nil
		}
		close(running)
		<-ctx.Done() // a slow ledger, until the process stops
		return ctx.Err()
	}
	first := e.newQueue(nil, queue.WithStopTimeout(time.Millisecond))
	e.start(first)
	p := bizcircletest.SamplePayment()
	if got := deliver(first.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	<-running
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	job := e.onlyJob(queue.KindNotification)
	if job.State == rivertype.JobStateCompleted || e.mall.ledger.rows(t, paymentKey(p)) != 0 {
		t.Fatalf("after the stop: job %s, %d ledger rows; want not completed, 0", job.State, e.mall.ledger.rows(t, paymentKey(p)))
	}

	second := e.newQueue(nil)
	e.start(second)
	e.waitState(second, job.ID, rivertype.JobStateCompleted)
	if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != 2 || rows != 1 {
		t.Errorf("%d callback runs, %d ledger rows; want 2, 1", runs, rows)
	}
}

// TestDiscardedThenReplayed: a job that fails every attempt is discarded
// and listed as failed; a duplicate of it stores nothing; replayed after the
// fix, it is processed once; a completed job cannot be replayed.
func TestDiscardedThenReplayed(t *testing.T) {
	e := newEnv(t)
	fix := e.breakLedger()
	q := e.newQueue(nil, queue.WithMaxAttempts(2))
	e.start(q)
	p := bizcircletest.SamplePayment()
	if got := deliver(q.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	job := e.waitState(q, e.onlyJob(queue.KindNotification).ID, rivertype.JobStateDiscarded)

	ctx := context.Background()
	failed, err := q.Admin().Failed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].ID != job.ID || failed[0].EventType != bizcircle.EventPayment ||
		failed[0].TransactionID != p.TransactionID || failed[0].Attempt != 2 || !strings.Contains(failed[0].LastError, "ledger offline") {
		t.Fatalf("Failed = %+v, want the discarded payment after 2 attempts", failed)
	}

	if got := deliver(q.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
		t.Errorf("duplicate of the dead letter: status %d, want 204", got)
	}
	if jobs := e.jobs(queue.KindNotification); len(jobs) != 1 {
		t.Errorf("%d jobs after a duplicate of the dead letter, want 1", len(jobs))
	}

	fix()
	if _, err := q.Admin().Replay(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	e.waitState(q, job.ID, rivertype.JobStateCompleted)
	if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != 3 || rows != 1 {
		t.Errorf("%d callback runs, %d ledger rows; want 3, 1", runs, rows)
	}
	if _, err := q.Admin().Replay(ctx, job.ID); !errors.Is(err, queue.ErrNotReplayable) {
		t.Errorf("Replay of a completed job: %v, want ErrNotReplayable", err)
	}
	if failed, err := q.Admin().Failed(ctx); err != nil || len(failed) != 0 {
		t.Errorf("Failed after the replay = %v, %v; want none", failed, err)
	}
}

// TestReplayDiscarded replays the dead letters discarded since a time.
func TestReplayDiscarded(t *testing.T) {
	e := newEnv(t)
	fix := e.breakLedger()
	q := e.newQueue(nil, queue.WithMaxAttempts(1))
	e.start(q)
	payments := []bizcircle.PaymentEvent{bizcircletest.SamplePayment(), bizcircletest.SamplePayment()}
	for _, p := range payments {
		if got := deliver(q.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
			t.Fatalf("status %d, want 204", got)
		}
	}
	for _, j := range e.jobs(queue.KindNotification) {
		e.waitState(q, j.ID, rivertype.JobStateDiscarded)
	}
	fix()

	ctx := context.Background()
	if replayed, err := q.Admin().ReplayDiscarded(ctx, time.Now().Add(time.Hour)); err != nil || len(replayed) != 0 {
		t.Fatalf("ReplayDiscarded(in an hour) = %v, %v; want none", replayed, err)
	}
	replayed, err := q.Admin().ReplayDiscarded(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(replayed) != 2 {
		t.Fatalf("ReplayDiscarded(an hour ago) = %v, %v; want 2 jobs", replayed, err)
	}
	for _, j := range replayed {
		e.waitState(q, j.ID, rivertype.JobStateCompleted)
	}
	for _, p := range payments {
		if rows := e.mall.ledger.rows(t, paymentKey(p)); rows != 1 {
			t.Errorf("%d ledger rows for %s, want 1", rows, p.TransactionID)
		}
	}
}

// TestForgedRows: jobs written into River's table by someone without
// WeChat Pay's key run no callback: they are cancelled, with the reason.
func TestForgedRows(t *testing.T) {
	e := newEnv(t)
	q := e.newQueue(nil)
	e.start(q)
	// The attacker knows the APIv3 key and the serial, not WeChat Pay's
	// private key.
	attacker := bizcircletest.NewPlatform()
	attacker.APIv3Key, attacker.Serial = e.platform.APIv3Key, e.platform.Serial
	other := bizcircletest.SamplePayment()

	tests := []struct {
		name    string
		args    func(p bizcircle.PaymentEvent) queue.NotificationArgs
		wantErr error
	}{
		{"an unsigned envelope", func(p bizcircle.PaymentEvent) queue.NotificationArgs {
			a := argsOf(e.platform.Payment(p), paymentKey(p))
			a.Signed.Signature = "bm90IGEgc2lnbmF0dXJl"
			return a
		}, queue.ErrUnverified},
		{"an envelope re-signed by someone else", func(p bizcircle.PaymentEvent) queue.NotificationArgs {
			return argsOf(attacker.Payment(p), paymentKey(p))
		}, queue.ErrUnverified},
		{"a signed envelope whose body was changed", func(p bizcircle.PaymentEvent) queue.NotificationArgs {
			a := argsOf(e.platform.Payment(p), paymentKey(p))
			a.Signed.Body = []byte(strings.Replace(string(a.Signed.Body), `"id":"`, `"id":"x`, 1))
			return a
		}, queue.ErrUnverified},
		{"a real notification under another event's key", func(bizcircle.PaymentEvent) queue.NotificationArgs {
			return argsOf(e.platform.Payment(other), paymentKey(bizcircletest.SamplePayment()))
		}, queue.ErrKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bizcircletest.SamplePayment()
			a := tt.args(p)
			res, err := q.River().Insert(context.Background(), a, nil)
			if err != nil {
				t.Fatal(err)
			}
			job := e.waitState(q, res.Job.ID, rivertype.JobStateCancelled)
			if len(job.Errors) != 1 || !strings.Contains(job.Errors[0].Error, tt.wantErr.Error()) {
				t.Errorf("errors %v, want one that says %q", job.Errors, tt.wantErr)
			}
			if runs := e.mall.runCount(a.Key) + e.mall.runCount(paymentKey(other)); runs != 0 {
				t.Errorf("%d callback runs, want 0", runs)
			}
		})
	}
	// Forged rows are security events for queue failed, not payments for
	// queue reconcile.
	failed, err := q.Admin().Failed(context.Background())
	if err != nil || len(failed) != len(tests) {
		t.Errorf("Failed = %d jobs, %v; want the %d forged rows", len(failed), err, len(tests))
	}
	if unsynced, err := q.Admin().Unsynced(context.Background()); err != nil || len(unsynced) != 0 {
		t.Errorf("Unsynced = %v, %v; want none of the forged rows", unsynced, err)
	}
}

// TestOnRegistration: handlers registered with bizcircle.On run in queue
// mode like the built-in events, with the job's transaction.
func TestOnRegistration(t *testing.T) {
	type transaction struct {
		TransactionID string `json:"transaction_id"`
		Amount        struct {
			Total int64 `json:"total"`
		} `json:"amount"`
	}
	e := newEnv(t)
	var mu sync.Mutex
	var got []transaction
	q, err := queue.New(e.pool, e.platform.APIv3Key, e.platform.Verifier(), nil,
		queue.WithSchema(e.schema), queue.WithLogger(quiet), queue.WithRiverConfig(testRiver),
		queue.WithBizcircle(bizcircle.On("TRANSACTION.SUCCESS",
			func(tr *transaction) string { return tr.TransactionID },
			func(ctx context.Context, tr *transaction) error {
				if err := e.mall.ledger.award(ctx, "TRANSACTION.SUCCESS:"+tr.TransactionID, "o", tr.Amount.Total); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				got = append(got, *tr)
				return nil
			})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	e.start(q)
	msg := e.platform.Notify("TRANSACTION.SUCCESS", "transaction", "支付成功",
		[]byte(`{"transaction_id":"4200000001","amount":{"total":888}}`))
	for range 2 {
		if status := deliver(q.Endpoint(), msg); status != http.StatusNoContent {
			t.Fatalf("status %d, want 204", status)
		}
	}
	job := e.onlyJob(queue.KindNotification)
	if job.State != rivertype.JobStateCompleted {
		job = e.waitState(q, job.ID, rivertype.JobStateCompleted)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].TransactionID != "4200000001" || got[0].Amount.Total != 888 {
		t.Errorf("callback got %+v, want one transaction 4200000001 of 888", got)
	}
	if rows := e.mall.ledger.rows(t, "TRANSACTION.SUCCESS:4200000001"); rows != 1 {
		t.Errorf("%d ledger rows, want 1", rows)
	}
}

// TestIgnoredEvent: an event no handler takes is answered 204 and stored
// nowhere.
func TestIgnoredEvent(t *testing.T) {
	e := newEnv(t)
	q, err := queue.New(e.pool, e.platform.APIv3Key, e.platform.Verifier(),
		bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }},
		queue.WithSchema(e.schema), queue.WithLogger(quiet),
		queue.WithBizcircle(bizcircle.WithObserver(e.outcomes.observe)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	refund := e.platform.Refund(bizcircletest.SampleRefund(bizcircletest.SamplePayment()))
	if status := deliver(q.Endpoint(), refund); status != http.StatusNoContent {
		t.Fatalf("status %d, want 204", status)
	}
	if jobs := e.jobs(queue.KindNotification); len(jobs) != 0 || e.outcomes.count(bizcircle.OutcomeIgnored) != 1 {
		t.Errorf("%d jobs, %d ignored outcomes; want 0, 1", len(jobs), e.outcomes.count(bizcircle.OutcomeIgnored))
	}
}

// TestDefaultRetryHorizon: with the default attempts and River's default
// policy, a job keeps being retried for at least 7 days, jitter included.
func TestDefaultRetryHorizon(t *testing.T) {
	policy := &river.DefaultClientRetryPolicy{}
	var horizon time.Duration
	for errs := range queue.DefaultMaxAttempts - 1 {
		now := time.Now()
		horizon += policy.NextRetry(&rivertype.JobRow{Errors: make([]rivertype.AttemptError, errs)}).Sub(now)
	}
	if horizon < 7*24*time.Hour {
		t.Errorf("the last attempt comes %v after the first, want at least 7 days", horizon)
	}
	t.Logf("retry horizon with %d attempts: %.1f days", queue.DefaultMaxAttempts, horizon.Hours()/24)
}

// TestStoreFailure: while the database is down or hangs, the endpoint
// answers 500 within the insert timeout, well before WeChat Pay hangs up;
// WeChat Pay's retry after the recovery is stored and processed once.
func TestStoreFailure(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode proxyMode
	}{
		{"the database is down", proxyDown},
		{"the database hangs", proxyHung},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			px, url := newProxy(t, pgURL(t))
			const timeout = 500 * time.Millisecond
			recv := e.newQueue(newPool(t, url, 4), queue.WithInsertTimeout(timeout))
			// A first notification opens the pool's connections.
			if got := deliver(recv.Endpoint(), e.platform.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
				t.Fatalf("status before the failure %d, want 204", got)
			}

			px.set(tt.mode)
			p := bizcircletest.SamplePayment()
			start := time.Now()
			status := deliver(recv.Endpoint(), e.platform.Payment(p))
			if elapsed := time.Since(start); status != http.StatusInternalServerError || elapsed > timeout+time.Second {
				t.Errorf("while %s: status %d after %v, want 500 within %v", tt.name, status, elapsed, timeout+time.Second)
			}
			if got := e.outcomes.count(bizcircle.OutcomeFailed); got != 1 {
				t.Errorf("%d failed outcomes, want 1", got)
			}

			px.set(proxyUp)
			// WeChat Pay retries until it gets a 2xx. The first retry may
			// still meet a connection the outage broke: it gets a 500 too.
			var statuses []int
			for range 3 {
				statuses = append(statuses, deliver(recv.Endpoint(), e.platform.Payment(p)))
				if statuses[len(statuses)-1] == http.StatusNoContent {
					break
				}
			}
			if statuses[len(statuses)-1] != http.StatusNoContent {
				t.Fatalf("statuses after the recovery %v, want a 204", statuses)
			}
			worker := e.newQueue(nil)
			e.start(worker)
			for _, j := range e.jobs(queue.KindNotification) {
				e.waitState(worker, j.ID, rivertype.JobStateCompleted)
			}
			if runs, rows := e.mall.runCount(paymentKey(p)), e.mall.ledger.rows(t, paymentKey(p)); runs != 1 || rows != 1 {
				t.Errorf("%d callback runs, %d ledger rows; want 1, 1", runs, rows)
			}
		})
	}
}

// TestNothingReadableAtRest: after payments, refunds, points syncs and
// failed attempts, River's tables hold no OpenID and no amount of the
// plaintexts.
func TestNothingReadableAtRest(t *testing.T) {
	e := newEnv(t)
	e.mall.before = func(_ context.Context, _ string, run int32) error {
		if run == 1 {
			return errors.New("ledger offline")
		}
		return nil
	}
	api, points := e.newAPI()
	api.FailNext(1, bizcircletest.FailSystemError)
	q := e.newQueue(nil, queue.WithPointsClient(points, 2))
	e.mall.syncs = q // each payment enqueues a sync naming the OpenID
	e.start(q)
	var secrets []string
	for i := range 3 {
		p := bizcircletest.SamplePayment()
		p.OpenID = "oSECRET" + unique("openid")
		p.Amount = 987650 + int64(i)
		r := bizcircletest.SampleRefund(p)
		r.RefundAmount = 123450 + int64(i)
		secrets = append(secrets, p.OpenID, strconv.FormatInt(p.Amount, 10), strconv.FormatInt(r.RefundAmount, 10))
		for _, m := range []*bizcircletest.Message{e.platform.Payment(p), e.platform.Refund(r)} {
			if got := deliver(q.Endpoint(), m); got != http.StatusNoContent {
				t.Fatalf("status %d, want 204", got)
			}
		}
	}
	for _, j := range e.jobs(queue.KindNotification) {
		e.waitState(q, j.ID, rivertype.JobStateCompleted)
	}
	syncs := e.jobs(queue.KindSyncPoints)
	for _, j := range syncs {
		e.waitState(q, j.ID, rivertype.JobStateCompleted)
	}
	if len(syncs) != 3 || syncCalls(api)[http.StatusNoContent] != 3 {
		t.Fatalf("%d sync jobs, %v calls; want 3 synced", len(syncs), syncCalls(api))
	}
	// The dump does read the jobs' arguments: their keys are there.
	assertNoSecrets(t, e, secrets, e.jobs(queue.KindNotification)[0].EncodedArgs)
}

// assertNoSecrets fails if any of River's tables in the env's schema holds
// one of secrets, in any column. The job arguments control must be found in
// river_job's dump, or the dump is broken.
func assertNoSecrets(t *testing.T, e *env, secrets []string, control []byte) {
	t.Helper()
	ctx := context.Background()
	rows, err := e.pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1 AND table_name LIKE 'river%' AND table_type = 'BASE TABLE'`, e.schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tables, "river_job") {
		t.Fatalf("tables %v, want river_job among them", tables)
	}
	for _, table := range tables {
		var dump string
		err := e.pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+
			pgx.Identifier{e.schema, table}.Sanitize()+` t`).Scan(&dump)
		if err != nil {
			t.Fatal(err)
		}
		if table == "river_job" {
			var a struct{ Key string }
			if err := json.Unmarshal(control, &a); err != nil || a.Key == "" || !strings.Contains(dump, a.Key) {
				t.Fatalf("river_job's dump lacks the control key %q (%v)", a.Key, err)
			}
		}
		for _, s := range secrets {
			if strings.Contains(dump, s) {
				t.Errorf("table %s holds %q", table, s)
			}
		}
	}
}

// TestGroupCommit: notifications arriving together, new events and
// duplicates mixed (of each other and of jobs stored before), are each
// answered 204 after the commit holding their job: one job per event, each
// counted once as stored.
func TestGroupCommit(t *testing.T) {
	e := newEnv(t)
	q := e.newQueue(nil, queue.WithGroupCommit(16, 1))
	payments := make([]bizcircle.PaymentEvent, 40)
	for i := range payments {
		payments[i] = bizcircletest.SamplePayment()
	}
	const before = 10 // stored before the others arrive
	for _, p := range payments[:before] {
		if got := deliver(q.Endpoint(), e.platform.Payment(p)); got != http.StatusNoContent {
			t.Fatalf("status %d, want 204", got)
		}
	}
	var wg sync.WaitGroup
	statuses := make([]int, 3*len(payments))
	start := make(chan struct{})
	for i := range statuses {
		msg := e.platform.Payment(payments[i%len(payments)]) // each payment three times
		wg.Go(func() {
			<-start
			statuses[i] = deliver(q.Endpoint(), msg)
		})
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusNoContent {
			t.Errorf("delivery %d: status %d, want 204", i, s)
		}
	}
	if jobs := e.jobs(queue.KindNotification); len(jobs) != len(payments) {
		t.Errorf("%d jobs, want %d", len(jobs), len(payments))
	}
	if stored, dups := e.outcomes.count(bizcircle.OutcomeStored), e.outcomes.count(bizcircle.OutcomeDuplicate); stored != len(payments) || dups != len(statuses)-len(payments)+before {
		t.Errorf("%d stored, %d duplicates; want %d, %d", stored, dups, len(payments), len(statuses)-len(payments)+before)
	}

	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if got := deliver(q.Endpoint(), e.platform.Payment(bizcircletest.SamplePayment())); got != http.StatusInternalServerError {
		t.Errorf("after Close: status %d, want 500", got)
	}
}

// argsOf returns the job arguments of m under key, as the endpoint stores
// them.
func argsOf(m *bizcircletest.Message, key string) queue.NotificationArgs {
	return queue.NotificationArgs{
		Key:            key,
		EventType:      m.EventType,
		NotificationID: m.ID,
		Signed: bizcircle.SignedRequest{
			Timestamp: m.Header.Get(bizcircle.HeaderTimestamp),
			Nonce:     m.Header.Get(bizcircle.HeaderNonce),
			Signature: m.Header.Get(bizcircle.HeaderSignature),
			Serial:    m.Header.Get(bizcircle.HeaderSerial),
			Body:      m.Body,
		},
	}
}

// TestStoreIsOneStatement: a stored notification costs one INSERT, with no
// BEGIN or COMMIT around it, and the job is visible at once to another
// connection (it committed).
func TestStoreIsOneStatement(t *testing.T) {
	e := newEnv(t)
	cfg, err := pgxpool.ParseConfig(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	tracer := &statements{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	q := e.newQueue(pool)
	// The first delivery also runs River's one-time probe of the server.
	if got := deliver(q.Endpoint(), e.platform.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	for i := 1; i <= 3; i++ {
		tracer.reset()
		if got := deliver(q.Endpoint(), e.platform.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
			t.Fatalf("status %d, want 204", got)
		}
		var inserts int
		for _, sql := range tracer.all() {
			switch {
			case strings.Contains(sql, "INSERT INTO"):
				inserts++
			case strings.Contains(sql, "pg_notify"): // River's insert notification, at most once a second
			default:
				t.Errorf("delivery %d ran %q besides the insert", i, sql)
			}
		}
		if inserts != 1 {
			t.Errorf("delivery %d ran %d inserts, want 1", i, inserts)
		}
		if jobs := e.jobs(queue.KindNotification); len(jobs) != i+1 {
			t.Errorf("after delivery %d another connection sees %d jobs, want %d", i, len(jobs), i+1)
		}
	}
}

// statements records the SQL of every query started.
type statements struct {
	mu  sync.Mutex
	sql []string
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sql = append(s.sql, data.SQL)
	return ctx
}

func (*statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (s *statements) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sql = nil
}

func (s *statements) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sql)
}

// TestStoreAfterClose: every notification that arrives after Close is
// answered 500 at once with the closed error, never left to wait out the
// insert timeout.
func TestStoreAfterClose(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var errs []error
	q := e.newQueue(nil, queue.WithInsertTimeout(4*time.Second), queue.WithBizcircle(bizcircle.WithObserver(func(o bizcircle.Observation) {
		if o.Outcome == bizcircle.OutcomeFailed {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, o.Err)
		}
	})))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if got := deliver(q.Endpoint(), e.platform.Payment(bizcircletest.SamplePayment())); got != http.StatusInternalServerError {
			t.Errorf("delivery %d after Close: status %d, want 500", i, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != n {
		t.Fatalf("%d failures observed, want %d", len(errs), n)
	}
	for i, err := range errs {
		if !errors.Is(err, queue.ErrStore) || !strings.HasSuffix(err.Error(), "queue: closed") {
			t.Errorf("delivery %d after Close: error %v, want ErrStore wrapping the closed error", i, err)
		}
	}
}
