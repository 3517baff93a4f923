package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	mallapi "github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// demoQueueUsage is appended to demo's usage.
const demoQueueUsage = `
With --queue it runs queue mode (package queue, on River) in the PostgreSQL
database at $DATABASE_URL (or $BIZCIRCLE_PG_URL), in a fresh schema it drops
at the end: each payment is stored as a job and answered 204; a worker
awards the points in a ledger table and enqueues the points sync in the
same transaction; the sync worker sends it to a fake WeChat Pay API, which
fails the first sync with a 500 (River retries it); a refund follows. The
demo retries after 100ms where River would wait attempt⁴ seconds.
`

// demoRetry retries jobs after 100ms, so the demo does not wait River's
// attempt⁴ seconds.
type demoRetry struct{}

func (demoRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(100 * time.Millisecond)
}

// queueMall is the queue demo's business logic: a points ledger in
// PostgreSQL, written in the job's transaction, and the points sync
// enqueued in that transaction.
type queueMall struct {
	ledger string // sanitized table name
	q      *queue.Queue

	mu       sync.Mutex
	failures map[string]int // transaction_id → payments to fail first
	actions  []string
}

func (m *queueMall) did(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.actions = append(m.actions, fmt.Sprintf(format, args...))
}

func (m *queueMall) takeActions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.actions
	m.actions = nil
	return a
}

// award adds points to openID's ledger in the job's transaction and returns
// the balance.
func (m *queueMall) award(ctx context.Context, key, openID string, points int64) (int64, error) {
	tx, ok := queue.Tx(ctx)
	if !ok {
		return 0, errors.New("not in a queue worker")
	}
	var balance int64
	err := tx.QueryRow(ctx, `WITH row AS (INSERT INTO `+m.ledger+` (event_key, openid, points) VALUES ($1, $2, $3) RETURNING points)
		SELECT coalesce(sum(points), 0) + (SELECT points FROM row) FROM `+m.ledger+` WHERE openid = $2`,
		key, openID, points).Scan(&balance)
	return balance, err
}

func (m *queueMall) OnPayment(ctx context.Context, e *bizcircle.PaymentEvent) error {
	job, _ := queue.JobFromContext(ctx)
	n := pointsFor(e.Amount)
	balance, err := m.award(ctx, bizcircle.EventPayment+":"+e.TransactionID, e.OpenID, n)
	if err != nil {
		return err
	}
	m.mu.Lock()
	fail := m.failures[e.TransactionID] > 0
	if fail {
		m.failures[e.TransactionID]--
	}
	m.mu.Unlock()
	if fail {
		m.did("job attempt %d: could not award %d points: %v (ledger row rolled back; River retries)", job.Attempt, n, errPointsUnavailable)
		return errPointsUnavailable
	}
	tx, ok := queue.Tx(ctx)
	if !ok {
		return errors.New("not in a queue worker")
	}
	req := mallapi.NewSyncPointsRequest(e, n, time.Now())
	if _, err := m.q.SyncPointsTx(ctx, tx, req); err != nil {
		return err
	}
	m.did("job attempt %d: awarded %d points to %s (balance %d), points sync enqueued in the same transaction", job.Attempt, n, short(e.OpenID), balance)
	return nil
}

func (m *queueMall) OnRefund(ctx context.Context, e *bizcircle.RefundEvent) error {
	job, _ := queue.JobFromContext(ctx)
	n := pointsFor(e.RefundAmount)
	balance, err := m.award(ctx, bizcircle.EventRefund+":"+e.RefundID, e.OpenID, -n)
	if err != nil {
		return err
	}
	m.did("job attempt %d: took back %d points from %s (balance %d)", job.Attempt, n, short(e.OpenID), balance)
	return nil
}

// A demoQueueStep is one notification and what it should lead to.
type demoQueueStep struct {
	what    string
	msg     *bizcircletest.Message
	plain   bool // send as is, do not re-sign
	status  int
	outcome bizcircle.Outcome
	jobs    int // notification jobs it should complete
	syncs   int // syncs it should complete
}

func runDemoQueue(ctx context.Context, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bizcircle demo --queue: %v\n", err)
		return exitFailure
	}
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		url = os.Getenv("BIZCIRCLE_PG_URL")
	}
	if url == "" {
		return fail(errors.New("set DATABASE_URL (or BIZCIRCLE_PG_URL) to a PostgreSQL database: queue mode stores jobs there"))
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fail(errors.New("DATABASE_URL is not a PostgreSQL URL"))
	}
	cfg.MaxConns = max(cfg.MaxConns, 16)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()

	// A fresh schema, dropped at the end, so that runs do not meet.
	schema := "bizcircle_demo_" + strings.ToLower(rand.Text()[:10])
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		pool.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	}()
	quiet := slog.New(slog.DiscardHandler)
	if err := queue.Migrate(ctx, pool, queue.WithSchema(schema), queue.WithLogger(quiet)); err != nil {
		return fail(err)
	}
	ledger := pgx.Identifier{schema, "ledger"}.Sanitize()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+ledger+` (id bigserial PRIMARY KEY, event_key text NOT NULL, openid text NOT NULL, points bigint NOT NULL)`); err != nil {
		return fail(err)
	}

	platform := bizcircletest.NewPlatform()
	fakeAPI := bizcircletest.NewAPIServer(platform, bizcircletest.NewMerchant())
	defer fakeAPI.Close()
	points, err := mallapi.New(fakeAPI.NewClient())
	if err != nil {
		return fail(err)
	}
	shop := &queueMall{ledger: ledger, failures: map[string]int{}}
	var seen queueOutcomes
	q, err := queue.New(pool, platform.APIv3Key, platform.Verifier(), shop,
		queue.WithSchema(schema), queue.WithLogger(quiet), queue.WithPointsClient(points, 2),
		queue.WithRetryPolicy(demoRetry{}),
		queue.WithBizcircle(bizcircle.WithObserver(seen.observe)))
	if err != nil {
		return fail(err)
	}
	defer q.Close()
	shop.q = q
	events, unsubscribe := q.River().Subscribe(river.EventKindJobCompleted)
	defer unsubscribe()
	if err := q.Start(ctx); err != nil {
		return fail(err)
	}
	endpoint, stop, err := serveLoopback(q.Endpoint())
	if err != nil {
		return fail(err)
	}
	defer stop()

	payment := bizcircletest.SamplePayment()
	paid := platform.Payment(payment)
	refund := bizcircletest.SampleRefund(payment)
	flaky := bizcircletest.SamplePayment()
	flaky.Amount = 500
	shop.failures[flaky.TransactionID] = 1
	fakeAPI.FailNext(1, bizcircletest.FailSystemError) // the first sync

	steps := []demoQueueStep{
		{what: "payment, " + yuan(payment.Amount), msg: paid, status: http.StatusNoContent, outcome: bizcircle.OutcomeStored, jobs: 1, syncs: 1},
		{what: "the same payment again (duplicate)", msg: paid, status: http.StatusNoContent, outcome: bizcircle.OutcomeDuplicate},
		{what: "refund of it, " + yuan(refund.RefundAmount), msg: platform.Refund(refund), status: http.StatusNoContent, outcome: bizcircle.OutcomeStored, jobs: 1},
		{what: "payment changed after signing", msg: tamper(platform.Payment(bizcircletest.SamplePayment())), plain: true, status: http.StatusUnauthorized, outcome: bizcircle.OutcomeRejected},
		{what: "payment, " + yuan(flaky.Amount) + ", callback fails once", msg: platform.Payment(flaky), status: http.StatusNoContent, outcome: bizcircle.OutcomeStored, jobs: 1, syncs: 1},
	}

	fmt.Fprintf(stdout, "bizcircle demo --queue: a test WeChat Pay platform → queue mode (River, schema %s) at %s\n\n", schema, endpoint)
	client := &http.Client{Timeout: bizcircletest.DefaultAttemptTimeout}
	unexpected := 0
	for i, step := range steps {
		d := &bizcircletest.Deliverer{Platform: platform, Client: client, Schedule: []time.Duration{}}
		if step.plain {
			d.Platform = nil
		}
		calls := len(fakeAPI.CallsTo(bizcircletest.PathPointsNotify))
		attempts, err := d.DeliverURL(ctx, endpoint, step.msg)
		if err != nil && !errors.Is(err, bizcircletest.ErrNotAcknowledged) {
			return fail(err)
		}
		a := attempts[0]
		outcome := seen.take()
		line := fmt.Sprintf("%d. %-44s → %s | %s | %s", i+1, step.what, answer(a), outcome, a.Latency.Round(10*time.Microsecond))
		if a.Err != nil || a.Status != step.status || outcome != step.outcome {
			unexpected++
			line += "  ✗ UNEXPECTED"
		}
		fmt.Fprintln(stdout, line)
		if err := awaitJobs(ctx, events, step.jobs, step.syncs); err != nil {
			unexpected++
			fmt.Fprintf(stdout, "   ✗ UNEXPECTED: %v\n", err)
		}
		for _, act := range shop.takeActions() {
			fmt.Fprintf(stdout, "   worker: %s\n", act)
		}
		for _, c := range fakeAPI.CallsTo(bizcircletest.PathPointsNotify)[calls:] {
			status := fmt.Sprintf("%d", c.Status)
			if c.Status >= 300 {
				status += " (River retries the sync)"
			}
			fmt.Fprintf(stdout, "   sync worker: POST %s transaction_id=%s → %s\n", c.Path, c.JSON["transaction_id"], status)
		}
		if step.jobs == 0 && step.syncs == 0 {
			fmt.Fprintln(stdout, "   no job: nothing to process")
		}
	}
	fmt.Fprintln(stdout)

	unexpected += demoQueueChecks(ctx, stdout, pool, ledger, q, fakeAPI, payment)
	if unexpected > 0 {
		fmt.Fprintf(stdout, "demo --queue: %d things did not behave as expected\n", unexpected)
		return exitFailure
	}
	fmt.Fprintln(stdout, "demo --queue: every notification was answered at once and processed once by the workers; the syncs reached WeChat Pay once each, one after a retry; River's tables hold no OpenID.")
	return exitOK
}

// awaitJobs waits until jobs notification jobs and syncs sync jobs have
// completed, counted from River's events.
func awaitJobs(ctx context.Context, events <-chan *river.Event, jobs, syncs int) error {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for jobs > 0 || syncs > 0 {
		select {
		case e := <-events:
			switch e.Job.Kind {
			case queue.KindNotification:
				jobs--
			case queue.KindSyncPoints:
				syncs--
			}
		case <-timeout.C:
			return fmt.Errorf("%d notification jobs and %d syncs not completed after 30s", jobs, syncs)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// demoQueueChecks checks the end state and returns how many checks failed.
func demoQueueChecks(ctx context.Context, stdout io.Writer, pool *pgxpool.Pool, ledger string, q *queue.Queue, api *bizcircletest.APIServer, payment bizcircle.PaymentEvent) int {
	bad := 0
	check := func(ok bool, format string, args ...any) {
		mark := "✓"
		if !ok {
			mark, bad = "✗ UNEXPECTED:", bad+1
		}
		fmt.Fprintf(stdout, "%s %s\n", mark, fmt.Sprintf(format, args...))
	}
	var rows int
	var balance int64
	err := pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(points), 0) FROM `+ledger).Scan(&rows, &balance)
	check(err == nil && rows == 3 && balance == pointsFor(500), "ledger: %d rows, balance %d (want 3 rows: +%d, -%d, +%d)",
		rows, balance, pointsFor(payment.Amount), pointsFor(payment.Amount), pointsFor(500))
	statuses := map[int]int{}
	for _, c := range api.CallsTo(bizcircletest.PathPointsNotify) {
		statuses[c.Status]++
	}
	check(statuses[http.StatusNoContent] == 2 && statuses[http.StatusInternalServerError] == 1 && len(statuses) == 2,
		"fake WeChat Pay API: %d syncs acknowledged, %d answered 500 (want 2 and 1)", statuses[http.StatusNoContent], statuses[http.StatusInternalServerError])
	unsynced, err := q.Admin().Unsynced(ctx)
	check(err == nil && len(unsynced) == 0, "queue reconcile: %d payments without an acknowledged sync", len(unsynced))
	res, err := q.River().JobList(ctx, river.NewJobListParams().First(1000))
	leaked := 0
	if err == nil {
		for _, j := range res.Jobs {
			text := string(j.EncodedArgs) + string(j.Metadata) + fmt.Sprint(j.Errors)
			if strings.Contains(text, payment.OpenID) {
				leaked++
			}
		}
	}
	check(err == nil && leaked == 0 && len(res.Jobs) > 0, "River's %d jobs: %d hold the OpenID (want 0: arguments hold the signed, encrypted envelope and the sealed sync)", len(res.Jobs), leaked)
	fmt.Fprintln(stdout)
	return bad
}

// queueOutcomes keeps the endpoint's last outcome (stored, duplicate,
// rejected, …), through WithObserver; the workers' outcomes are ignored.
type queueOutcomes struct{ outcomes }

func (o *queueOutcomes) observe(obs bizcircle.Observation) {
	if obs.Outcome == bizcircle.OutcomeProcessed || obs.Outcome == bizcircle.OutcomeVerified ||
		(obs.Outcome == bizcircle.OutcomeFailed && !errors.Is(obs.Err, queue.ErrStore)) {
		return // a worker's, or the decoder's before the endpoint's
	}
	o.outcomes.observe(obs)
}
