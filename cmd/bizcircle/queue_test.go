package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/jackc/pgx/v5"
)

// queueDB points DATABASE_URL at the test server and returns a fresh schema
// name, dropped when the test ends.
func queueDB(t *testing.T) string {
	t.Helper()
	url := testenv.Server(t, "BIZCIRCLE_PG_URL", "queue commands need PostgreSQL")
	t.Setenv("DATABASE_URL", url)
	schema := "bizcircle_cli_" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	return schema
}

func TestQueueBadCommandLines(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"queue"}, exitUsage, "Usage: bizcircle queue"},
		{[]string{"queue", "nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"queue", "replay"}, exitUsage, "give job IDs or --discarded-since"},
		{[]string{"queue", "replay", "--discarded-since", "24h", "5"}, exitUsage, "not both"},
		{[]string{"queue", "replay", "x"}, exitUsage, `"x" is not a job ID`},
		{[]string{"queue", "replay", "--discarded-since", "yesterday"}, exitUsage, "neither an RFC 3339 time nor a duration"},
		{[]string{"queue", "failed", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"queue", "cancel"}, exitUsage, "give the IDs of the jobs to cancel"},
		{[]string{"queue", "cancel", "5", "x"}, exitUsage, `"x" is not a job ID`},
		{[]string{"queue", "work"}, exitUsage, "nothing to run: give --addr"},
		{[]string{"queue", "work", "--addr", "127.0.0.1:0", "--fail", "1"}, exitUsage, "--fail applies to the demo's workers: it needs --demo-callbacks"},
		{[]string{"queue", "work", "--addr", "127.0.0.1:0", "--workers", "4"}, exitUsage, "--workers applies to the demo's workers"},
		{[]string{"queue", "failed"}, exitFailure, "set --database-url or DATABASE_URL"},
		{[]string{"queue", "migrate", "--database-url", "::not a url::"}, exitFailure, "not a PostgreSQL URL"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runInProcess(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.inStderr) {
				t.Errorf("got %v\nwant exit %d and %q on stderr", r, tt.code, tt.inStderr)
			}
		})
	}
}

// TestDemoQueue runs the queue-mode demo against the test server: CI runs
// the whole loop.
func TestDemoQueue(t *testing.T) {
	queueDB(t)
	r := runInProcess(t, "demo", "--queue")
	if r.code != exitOK {
		t.Fatalf("demo --queue: %v", r)
	}
	mustContain(t, "demo --queue", r.stdout,
		"1. payment, 2.00 yuan", "→ 204 No Content | stored", "points sync enqueued in the same transaction",
		"→ 500 (River retries the sync)", "→ 204",
		"2. the same payment again (duplicate)", "| duplicate",
		"3. refund of it", "took back 2 points",
		"4. payment changed after signing", "→ 401",
		"5. payment, 5.00 yuan, callback fails once", "job attempt 1: could not award", "job attempt 2: awarded 5 points",
		"✓ ledger: 3 rows, balance 5", "✓ fake WeChat Pay API: 2 syncs acknowledged", "✓ queue reconcile: 0", "0 hold the OpenID")
}

// TestQueueWorkFailedReplay drives the operator's loop with the binary: a
// worker whose callback fails discards a payment; 'failed' and 'reconcile'
// list it; 'replay' runs it once; SIGTERM stops the worker cleanly.
func TestQueueWorkFailedReplay(t *testing.T) {
	schema := queueDB(t)
	dir := filepath.Join(t.TempDir(), "keys")
	if r := runBinary(t, "keygen", "--dir", dir); r.code != exitOK {
		t.Fatalf("keygen: %v", r)
	}
	if r := runBinary(t, "queue", "migrate", "--schema", schema); r.code != exitOK || !strings.Contains(r.stdout, "up to date in schema "+schema) {
		t.Fatalf("migrate: %v", r)
	}
	w := startQueueWork(t, "--schema", schema, "--dir", dir, "--demo-callbacks", "--fail", "2", "--max-attempts", "2")
	id := fmt.Sprintf("42%026d", time.Now().UnixNano())
	if r := runBinary(t, "send", "--dir", dir, "--url", w.url, "--transaction-id", id); r.code != exitOK {
		t.Fatalf("send: %v", r)
	}
	w.waitFor(t, "→ 204 stored")
	w.waitFor(t, "failing on purpose")
	w.waitFor(t, "failing on purpose")

	var failed result
	for deadline := time.Now().Add(20 * time.Second); ; {
		failed = runBinary(t, "queue", "failed", "--schema", schema)
		if strings.Contains(failed.stdout, "discarded") || time.Now().After(deadline) {
			break
		}
	}
	if failed.code != exitOK {
		t.Fatalf("failed: %v", failed)
	}
	mustContain(t, "queue failed", failed.stdout, "ID", "EVENT", "MALL_TRANSACTION.SUCCESS", id, "discarded", "2/2", "failing on purpose", "1 failed jobs")
	if strings.Contains(failed.stdout, "oUpF8uMu") {
		t.Errorf("queue failed shows an OpenID:\n%s", failed.stdout)
	}
	if r := runBinary(t, "queue", "reconcile", "--schema", schema); r.code != exitOK || !strings.Contains(r.stdout, id) {
		t.Errorf("reconcile does not list the unprocessed payment: %v", r)
	}

	jobID := strings.Fields(strings.Split(failed.stdout, "\n")[1])[0]
	if r := runBinary(t, "queue", "replay", "--schema", schema, jobID); r.code != exitOK || !strings.Contains(r.stdout, "1 jobs replayed") {
		t.Fatalf("replay: %v", r)
	}
	w.waitFor(t, "✓ processed MALL_TRANSACTION.SUCCESS")
	if r := runBinary(t, "queue", "replay", "--schema", schema, jobID); r.code != exitFailure || !strings.Contains(r.stderr, "not replayable") || r.stdout != "" {
		t.Errorf("replay of a completed job: %v\nwant exit 1, the error on stderr and nothing on stdout", r)
	}
	if r := runBinary(t, "queue", "failed", "--schema", schema); !strings.Contains(r.stdout, "no failed jobs") {
		t.Errorf("failed after the replay: %v", r)
	}
	if code := w.terminate(t); code != exitOK {
		t.Errorf("queue work exited %d after SIGTERM, want 0", code)
	}
}

// startQueueWork runs 'bizcircle queue work' receiving on a free loopback
// port and waits until it listens.
func startQueueWork(t *testing.T, args ...string) *served {
	t.Helper()
	return startCommand(t, "queue work", append([]string{"queue", "work", "--addr", "127.0.0.1:0"}, args...), "receiving on ")
}

// terminate sends SIGTERM, as a process manager does, and returns the exit
// code once the worker says it stopped. s.seen then holds all it printed.
func (s *served) terminate(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "bizcircle queue work: stopped")
	for line := range s.lines {
		s.seen = append(s.seen, line)
	}
	err := s.cmd.Wait()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// newQueueDB is queueDB with keys from keygen and River's tables migrated:
// it returns the schema and the key directory.
func newQueueDB(t *testing.T) (schema, dir string) {
	t.Helper()
	schema = queueDB(t)
	dir = filepath.Join(t.TempDir(), "keys")
	if r := runInProcess(t, "keygen", "--dir", dir); r.code != exitOK {
		t.Fatalf("keygen: %v", r)
	}
	if r := runInProcess(t, "queue", "migrate", "--schema", schema); r.code != exitOK {
		t.Fatalf("migrate: %v", r)
	}
	return schema, dir
}

// storePayment stores a payment with a receive-only 'queue work' and stops
// it; it returns the payment's transaction_id and all the worker printed.
func storePayment(t *testing.T, schema, dir string) (transactionID string, printed []string) {
	t.Helper()
	w := startQueueWork(t, "--schema", schema, "--dir", dir)
	transactionID = fmt.Sprintf("42%026d", time.Now().UnixNano())
	if r := runBinary(t, "send", "--dir", dir, "--url", w.url, "--transaction-id", transactionID); r.code != exitOK {
		t.Fatalf("send: %v", r)
	}
	w.waitFor(t, "→ 204 stored")
	if code := w.terminate(t); code != exitOK {
		t.Fatalf("queue work exited %d after SIGTERM, want 0", code)
	}
	return transactionID, w.seen
}

// jobState returns the state and attempts of the notification job of event
// key, read from River's table.
func jobState(t *testing.T, schema, key string) (state string, attempt int) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT state, attempt FROM `+pgx.Identifier{schema, "river_job"}.Sanitize()+
		` WHERE kind = 'bizcircle_notification' AND args->>'key' = $1`, key).Scan(&state, &attempt)
	if err != nil {
		t.Fatalf("job of %s: %v", key, err)
	}
	return state, attempt
}

// TestQueueWorkLeavesRealJobs: without --demo-callbacks, 'queue work' only
// receives: the payment it stored stays available, never attempted, and no
// callback ran. With --demo-callbacks the same job is completed, after one
// run of the print-only callback.
func TestQueueWorkLeavesRealJobs(t *testing.T) {
	schema, dir := newQueueDB(t)
	id, printed := storePayment(t, schema, dir)
	key := bizcircle.EventPayment + ":" + id
	out := strings.Join(printed, "\n")
	mustContain(t, "queue work", out, "no workers, stored notifications wait for the mall's own", "→ 204 stored", "stopped")
	if strings.Contains(out, "openid=") || strings.Contains(out, "processed") {
		t.Errorf("queue work without --demo-callbacks ran a callback:\n%s", out)
	}
	if state, attempt := jobState(t, schema, key); state != "available" || attempt != 0 {
		t.Fatalf("the stored payment is %s after %d attempts, want available after 0", state, attempt)
	}
	if r := runInProcess(t, "queue", "reconcile", "--schema", schema); r.code != exitOK || !strings.Contains(r.stdout, id) {
		t.Errorf("reconcile does not list the unprocessed payment: %v", r)
	}

	w := startQueueWork(t, "--schema", schema, "--dir", dir, "--demo-callbacks")
	w.waitFor(t, "✓ processed MALL_TRANSACTION.SUCCESS")
	if code := w.terminate(t); code != exitOK {
		t.Errorf("queue work --demo-callbacks exited %d after SIGTERM, want 0", code)
	}
	out = strings.Join(w.seen, "\n")
	mustContain(t, "queue work --demo-callbacks", out, "with the demo's print-only callbacks, which complete notifications without awarding points")
	if n := strings.Count(out, "transaction_id="+id); n != 1 {
		t.Errorf("the print-only callback ran %d times for the payment, want 1:\n%s", n, out)
	}
	if state, attempt := jobState(t, schema, key); state != "completed" || attempt != 1 {
		t.Errorf("the payment is %s after %d attempts, want completed after 1", state, attempt)
	}
	if r := runInProcess(t, "queue", "work", "--help"); r.code != exitOK ||
		!strings.Contains(r.stdout, "-demo-callbacks") || !strings.Contains(r.stdout, "Use --demo-callbacks only on a test database") {
		t.Errorf("queue work --help does not warn about --demo-callbacks: %v", r)
	}
}

// TestQueueCancel cancels a stored payment with 'queue cancel', which prints
// it cancelled; 'queue failed' lists it cancelled. Cancelling it again, and
// cancelling or replaying a job that does not exist, print the error alone.
func TestQueueCancel(t *testing.T) {
	schema, dir := newQueueDB(t)
	id, _ := storePayment(t, schema, dir)
	r := runInProcess(t, "queue", "reconcile", "--schema", schema)
	var jobID string
	for line := range strings.Lines(r.stdout) {
		if strings.Contains(line, id) {
			jobID = strings.Fields(line)[0]
		}
	}
	if jobID == "" {
		t.Fatalf("reconcile does not list the payment: %v", r)
	}

	r = runInProcess(t, "queue", "cancel", "--schema", schema, jobID)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("cancel: %v", r)
	}
	mustContain(t, "queue cancel", r.stdout, "ID", "STATE", jobID, id, "cancelled", "0/25", "1 jobs cancelled")
	r = runInProcess(t, "queue", "failed", "--schema", schema)
	mustContain(t, "queue failed", r.stdout, jobID, id, "cancelled", "1 failed jobs")
	if state, attempt := jobState(t, schema, bizcircle.EventPayment+":"+id); state != "cancelled" || attempt != 0 {
		t.Errorf("the payment is %s after %d attempts, want cancelled after 0", state, attempt)
	}

	tests := []struct {
		args     []string
		inStderr string
	}{
		{[]string{"cancel", jobID}, "job is not cancellable: " + jobID + " is cancelled"},
		{[]string{"cancel", "999999999"}, "not found"},
		{[]string{"replay", "999999999"}, "not found"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" prints the error alone", func(t *testing.T) {
			r := runInProcess(t, append([]string{"queue", tt.args[0], "--schema", schema}, tt.args[1:]...)...)
			if r.code != exitFailure || !strings.Contains(r.stderr, tt.inStderr) || r.stdout != "" {
				t.Errorf("got %v\nwant exit 1, %q on stderr and nothing on stdout", r, tt.inStderr)
			}
		})
	}
}
