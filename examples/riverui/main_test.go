package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

var quiet = slog.New(slog.DiscardHandler)

func TestOperatorAuth(t *testing.T) {
	for _, c := range []struct {
		name          string
		credentials   string
		insecureLocal bool
		addr          string
		wantErr       string // "" for a start
		wantOpen      bool   // no auth
	}{
		{name: "credentials protect the UI on any address", credentials: "ops:s3cret", addr: ":8080"},
		{name: "no credentials refuse to start", addr: "127.0.0.1:8080", wantErr: authEnv + " is unset"},
		{name: "insecure-local serves without auth on 127.0.0.1", insecureLocal: true, addr: "127.0.0.1:8080", wantOpen: true},
		{name: "insecure-local serves without auth on ::1", insecureLocal: true, addr: "[::1]:8080", wantOpen: true},
		{name: "insecure-local refuses all interfaces", insecureLocal: true, addr: ":8080", wantErr: "loopback"},
		{name: "insecure-local refuses a public address", insecureLocal: true, addr: "0.0.0.0:8080", wantErr: "loopback"},
		{name: "insecure-local refuses a host name", insecureLocal: true, addr: "localhost:8080", wantErr: "loopback"},
		{name: "insecure-local keeps credentials when given", credentials: "ops:s3cret", insecureLocal: true, addr: "127.0.0.1:8080"},
		{name: "credentials without a colon are refused", credentials: "s3cret", addr: ":8080", wantErr: "user:password"},
		{name: "an empty password is refused", credentials: "ops:", addr: ":8080", wantErr: "user:password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			protect, err := operatorAuth(c.credentials, c.insecureLocal, c.addr)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).
				ServeHTTP(rec, httptest.NewRequest("GET", "/riverui/", nil))
			if open := rec.Code == http.StatusOK; open != c.wantOpen {
				t.Errorf("request without credentials: status %d, want open=%v", rec.Code, c.wantOpen)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	h := basicAuth("ops", "s3cret")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		name           string
		user, password string
		send           bool
		want           int
	}{
		{name: "no credentials get a challenge", want: http.StatusUnauthorized},
		{name: "a wrong password is refused", send: true, user: "ops", password: "guess", want: http.StatusUnauthorized},
		{name: "a wrong user is refused", send: true, user: "admin", password: "s3cret", want: http.StatusUnauthorized},
		{name: "a longer password is refused", send: true, user: "ops", password: "s3cret!", want: http.StatusUnauthorized},
		{name: "the right pair passes", send: true, user: "ops", password: "s3cret", want: http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/riverui/", nil)
			if c.send {
				req.SetBasicAuth(c.user, c.password)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Errorf("status %d, want %d", rec.Code, c.want)
			}
			if c.want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

// TestUIServesBesideEndpoint posts a signed notification to the endpoint,
// which needs no auth, and finds it through the UI, which does.
func TestUIServesBesideEndpoint(t *testing.T) {
	e := newEnv(t)
	p := bizcircletest.SamplePayment()
	if got := e.notify(e.wechat.Payment(p)); got != http.StatusNoContent {
		t.Fatalf("notification: status %d, want 204", got)
	}

	res, _ := e.do("GET", "/riverui/", nil, nil)
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("UI without credentials: status %d, want 401", res.StatusCode)
	}
	res, body := e.do("GET", "/riverui/", http.Header{"Accept": {"text/html"}}, nil, e.auth)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, "<title>River</title>") || !strings.Contains(body, uiPrefix+"/assets/") {
		t.Errorf("UI: status %d, %s, want 200 and River's page with prefixed assets:\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}

	job := e.onlyJob(rivertype.JobStateAvailable)
	if job.Kind != queue.KindNotification || !strings.Contains(job.Args, bizcircle.EventPayment+":"+p.TransactionID) {
		t.Errorf("listed job %+v, want the payment's notification job", job)
	}
	if strings.Contains(job.Args, p.OpenID) {
		t.Errorf("the UI shows the payer's OpenID: %s", job.Args)
	}

	res, _ = e.do("POST", "/riverui/api/jobs/cancel",
		http.Header{"Content-Type": {"application/json"}, "Sec-Fetch-Site": {"cross-site"}},
		strings.NewReader(`{"ids":["`+strconv.FormatInt(job.ID, 10)+`"]}`), e.auth)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site cancel: status %d, want 403", res.StatusCode)
	}
	if job := e.onlyJob(rivertype.JobStateAvailable); job.State != string(rivertype.JobStateAvailable) {
		t.Errorf("job is %s after a refused cancel", job.State)
	}
}

// TestUIRetryNeverRerunsCompleted retries through the UI: a discarded job
// runs again, a completed one is refused, so no callback runs twice.
func TestUIRetryNeverRerunsCompleted(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	var runs atomic.Int32
	e := newEnv(t, queue.WithMaxAttempts(1))
	e.cb.Payment = func(ctx context.Context, p *bizcircle.PaymentEvent) error {
		runs.Add(1)
		if broken.Load() {
			return errors.New("ledger offline")
		}
		return nil
	}
	events, cancel := e.q.River().Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	defer cancel()
	if err := e.q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.notify(e.wechat.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
		t.Fatalf("notification: status %d, want 204", got)
	}
	id := wait(t, events, rivertype.JobStateDiscarded).ID

	retry := func() (int, string) {
		t.Helper()
		res, body := e.do("POST", "/riverui/api/jobs/retry", http.Header{"Content-Type": {"application/json"}},
			strings.NewReader(`{"ids":["`+strconv.FormatInt(id, 10)+`"]}`), e.auth)
		return res.StatusCode, body
	}
	broken.Store(false)
	if status, body := retry(); status != http.StatusOK {
		t.Fatalf("retry of the discarded job: status %d, want 200: %s", status, body)
	}
	wait(t, events, rivertype.JobStateCompleted)
	if status, body := retry(); status != http.StatusConflict || !strings.Contains(body, "completed") {
		t.Errorf("retry of the completed job: status %d, want 409 saying why: %s", status, body)
	}
	if row, err := e.q.River().JobGet(t.Context(), id); err != nil || row.State != rivertype.JobStateCompleted {
		t.Errorf("job after the refused retry: %v, %v; want completed", row, err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d callback runs, want 2 (failed, then replayed)", n)
	}
}

// TestUICancelGoesThroughAdmin cancels through the UI: a waiting job is
// cancelled, a completed one is refused with 409 and stays completed.
func TestUICancelGoesThroughAdmin(t *testing.T) {
	e := newEnv(t)
	cancelJob := func(id int64) (int, string) {
		t.Helper()
		res, body := e.do("POST", "/riverui/api/jobs/cancel", http.Header{"Content-Type": {"application/json"}},
			strings.NewReader(`{"ids":["`+strconv.FormatInt(id, 10)+`"]}`), e.auth)
		return res.StatusCode, body
	}
	if got := e.notify(e.wechat.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
		t.Fatalf("notification: status %d, want 204", got)
	}
	waiting := e.onlyJob(rivertype.JobStateAvailable)
	if status, body := cancelJob(waiting.ID); status != http.StatusOK {
		t.Fatalf("cancel of the waiting job: status %d, want 200: %s", status, body)
	}
	if row, err := e.q.River().JobGet(t.Context(), waiting.ID); err != nil || row.State != rivertype.JobStateCancelled {
		t.Fatalf("job after the cancel: %v, %v; want cancelled", row, err)
	}

	var runs atomic.Int32
	e.cb.Payment = func(context.Context, *bizcircle.PaymentEvent) error { runs.Add(1); return nil }
	events, stop := e.q.River().Subscribe(river.EventKindJobCompleted)
	defer stop()
	if err := e.q.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := bizcircletest.SamplePayment()
	p.TransactionID = "4200000000202612060000000001"
	if got := e.notify(e.wechat.Payment(p)); got != http.StatusNoContent {
		t.Fatalf("second notification: status %d, want 204", got)
	}
	done := wait(t, events, rivertype.JobStateCompleted).ID
	if status, body := cancelJob(done); status != http.StatusConflict || !strings.Contains(body, "not cancellable") {
		t.Errorf("cancel of the completed job: status %d, want 409 saying why: %s", status, body)
	}
	if row, err := e.q.River().JobGet(t.Context(), done); err != nil || row.State != rivertype.JobStateCompleted {
		t.Errorf("job after the refused cancel: %v, %v; want completed", row, err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("%d callback runs, want 1 (the cancelled payment never ran)", n)
	}
}

func TestRetryRequests(t *testing.T) {
	h := retryByReplay(nil, quiet) // bad requests never reach the Admin
	for _, c := range []struct{ name, body string }{
		{"no body", ""},
		{"no IDs", `{"ids":[]}`},
		{"an ID that is no number", `{"ids":["x"]}`},
		{"not JSON", `ids=1`},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/riverui/api/jobs/retry", strings.NewReader(c.body)))
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"message"`) {
				t.Errorf("status %d, body %s; want 400 with a message", rec.Code, rec.Body)
			}
		})
	}
}

// env is the program on a fresh River schema, served by httptest.
type env struct {
	t      *testing.T
	wechat *bizcircletest.Platform
	cb     *bizcircle.CallbackFuncs
	q      *queue.Queue
	srv    *httptest.Server
	auth   func(*http.Request)
}

func newEnv(t *testing.T, opts ...queue.Option) *env {
	t.Helper()
	pool := newPool(t)
	e := &env{t: t, wechat: bizcircletest.NewPlatform(), cb: &bizcircle.CallbackFuncs{}}
	// The callbacks read e.cb when they run, so a test can set them later.
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, p *bizcircle.PaymentEvent) error {
		if e.cb.Payment == nil {
			return nil
		}
		return e.cb.Payment(ctx, p)
	}}
	opts = append([]queue.Option{
		queue.WithSchema(newSchema(t, pool)),
		queue.WithLogger(quiet),
		queue.WithRiverConfig(func(c *river.Config) { c.TestOnly, c.FetchPollInterval = true, 20*time.Millisecond }),
	}, opts...)
	q, err := queue.New(pool, e.wechat.APIv3Key, e.wechat.Verifier(), cb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e.q = q
	r, err := newRouter(t.Context(), q, basicAuth("ops", "s3cret"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	e.auth = func(r *http.Request) { r.SetBasicAuth("ops", "s3cret") }
	return e
}

// notify posts m to the endpoint, as WeChat Pay does: no credentials.
func (e *env) notify(m *bizcircletest.Message) int {
	e.t.Helper()
	req, err := m.NewRequest(e.t.Context(), e.srv.URL+"/wechat/bizcircle")
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// do sends a request to the server and returns the response and its body.
func (e *env) do(method, path string, h http.Header, body io.Reader, edit ...func(*http.Request)) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	for _, fn := range edit {
		fn(req)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res, string(b)
}

// uiJob is a job as the UI's API lists it.
type uiJob struct {
	ID    int64  `json:"id"`
	Args  string `json:"args"`
	Kind  string `json:"kind"`
	State string `json:"state"`
}

// onlyJob lists the jobs in state through the UI's API, failing unless
// there is exactly one.
func (e *env) onlyJob(state rivertype.JobState) uiJob {
	e.t.Helper()
	res, body := e.do("GET", "/riverui/api/jobs?state="+string(state), nil, nil, e.auth)
	var list struct{ Data []uiJob }
	if err := json.Unmarshal([]byte(body), &list); err != nil || res.StatusCode != http.StatusOK {
		e.t.Fatalf("job list: status %d, %v: %s", res.StatusCode, err, body)
	}
	if len(list.Data) != 1 {
		e.t.Fatalf("%d %s jobs in the UI, want 1: %s", len(list.Data), state, body)
	}
	return list.Data[0]
}

// wait returns the job of the next event, failing unless it is in state.
func wait(t *testing.T, events <-chan *river.Event, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	select {
	case ev := <-events:
		if ev.Job.State != state {
			t.Fatalf("job %d is %s (errors %v), want %s", ev.Job.ID, ev.Job.State, ev.Job.Errors, state)
		}
		return ev.Job
	case <-time.After(30 * time.Second): // a deadline, not a wait: events come in milliseconds
		t.Fatalf("no job event in 30s, want a %s job", state)
		return nil
	}
}

// newPool connects to the test server, closed when the test ends: without
// BIZCIRCLE_PG_URL the test skips, and fails under CI=true (testenv).
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := testenv.Server(t, "BIZCIRCLE_PG_URL", "this test needs PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newSchema migrates River's tables into a fresh schema, dropped when the
// test ends, so that runs and other packages' tests never meet.
func newSchema(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	schema := "riverui_" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if err := queue.Migrate(context.Background(), pool, queue.WithSchema(schema), queue.WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
	return schema
}
