package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
)

const queueUsage = `Usage: bizcircle queue <command> [flags]

Operates queue mode (package queue, on River) in the PostgreSQL database at
--database-url (default: $DATABASE_URL). None of these commands shows
plaintext: jobs hold none.

Commands:
  migrate    create or update River's tables with River's own migrations
  work       receive notifications into the queue (--addr); it processes
             none of them unless --demo-callbacks, which completes them with
             print-only callbacks that award no points: test databases only;
             SIGTERM or Ctrl-C stops it cleanly
  failed     list the notification and points sync jobs that failed and have
             not succeeded since: retrying, discarded (dead letters) and
             cancelled, with event type, attempts and last error
  replay     run jobs again: 'replay ID...', or every dead letter discarded
             since a time: 'replay --discarded-since 2026-05-20T00:00:00+08:00'
             (or a duration: --discarded-since 24h)
  cancel     stop jobs that wait to run or to run again (a poisoned event):
             'cancel ID...'
  reconcile  list the payments whose points sync WeChat Pay has not
             acknowledged yet, oldest first

Run 'bizcircle queue <command> --help' for a command's flags.
`

type queueCommand struct {
	name     string
	synopsis string
	run      func(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer) int
}

var queueCommands = []queueCommand{
	{"migrate", "Usage: bizcircle queue migrate [flags]\n\nCreates or updates River's tables (in --schema, created if missing) with River's\nown migrations. Safe to run again.\n", runQueueMigrate},
	{"work", queueWorkUsage, runQueueWork},
	{"failed", "Usage: bizcircle queue failed [flags]\n\nLists the notification and points sync jobs that failed and have not succeeded\nsince, oldest first: retrying, discarded (dead letters) and cancelled.\n", runQueueFailed},
	{"replay", "Usage: bizcircle queue replay [flags] ID... | bizcircle queue replay [flags] --discarded-since TIME\n\nRuns retrying, discarded or cancelled jobs again now, with one more attempt if\nthey had none left. Completed and running jobs are refused: replaying them\nwould run their callbacks again. Flags come before the IDs.\n", runQueueReplay},
	{"cancel", "Usage: bizcircle queue cancel [flags] ID...\n\nCancels jobs that wait to run (available, scheduled) or to run again\n(retrying): they run no more, and 'queue failed' lists them as cancelled for\n30 days, as long as dead letters; 'queue replay ID' runs one again until\nthen, unless a later job of its event or transaction superseded it. Running, completed, discarded and cancelled jobs\nare refused. A cancelled notification no longer holds its event: WeChat Pay's\nnext re-push of it is stored as a new job. Flags come before the IDs.\n", runQueueCancel},
	{"reconcile", "Usage: bizcircle queue reconcile [flags]\n\nLists the payments whose points sync WeChat Pay has not acknowledged, oldest\nfirst: payment notifications not processed yet, and syncs waiting, retrying,\ndiscarded or refused (cancelled, with WeChat Pay's answer).\n", runQueueReconcile},
}

// queueFlags are the flags every queue command takes.
type queueFlags struct {
	databaseURL *string
	schema      *string
	fs          *flag.FlagSet
	synopsis    string // the command's usage
}

func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, queueUsage)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, queueUsage)
		return exitOK
	}
	for _, c := range queueCommands {
		if c.name != name {
			continue
		}
		fs := newFlagSet("queue " + name)
		q := &queueFlags{
			databaseURL: fs.String("database-url", "", "PostgreSQL `URL` (default: $DATABASE_URL)"),
			schema:      fs.String("schema", "", "PostgreSQL `schema` of River's tables (default: the search_path)"),
			fs:          fs,
			synopsis:    c.synopsis,
		}
		return c.run(ctx, q, rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "bizcircle queue: unknown command %q\nRun 'bizcircle queue --help' for the commands.\n", name)
	return exitUsage
}

// connect opens a pool on the database flag, with at least minConns
// connections unless the URL sets pool_max_conns.
func (q *queueFlags) connect(ctx context.Context, minConns int32) (*pgxpool.Pool, error) {
	url := *q.databaseURL
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	if url == "" {
		return nil, errors.New("no database: set --database-url or DATABASE_URL")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("--database-url or DATABASE_URL is not a PostgreSQL URL") // its text may hold a password
	}
	if !strings.Contains(url, "pool_max_conns") && cfg.MaxConns < minConns {
		cfg.MaxConns = minConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "bizcircle " + q.fs.Name()[len("bizcircle "):]
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	return pool, nil
}

func (q *queueFlags) options() []queue.Option {
	return []queue.Option{queue.WithSchema(*q.schema), queue.WithLogger(slog.New(slog.DiscardHandler))}
}

// admin connects an Admin; the error is printed.
func (q *queueFlags) admin(ctx context.Context, stderr io.Writer) (*queue.Admin, func(), bool) {
	pool, err := q.connect(ctx, 4)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", q.fs.Name(), err)
		return nil, nil, false
	}
	a, err := queue.NewAdmin(pool, q.options()...)
	if err != nil {
		pool.Close()
		fmt.Fprintf(stderr, "%s: %v\n", q.fs.Name(), err)
		return nil, nil, false
	}
	return a, pool.Close, true
}

func runQueueMigrate(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer) int {
	if ok, code := parseFlags(q.fs, q.synopsis, args, stdout, stderr); !ok {
		return code
	}
	pool, err := q.connect(ctx, 4)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle queue migrate: %v\n", err)
		return exitFailure
	}
	defer pool.Close()
	if err := queue.Migrate(ctx, pool, q.options()...); err != nil {
		fmt.Fprintf(stderr, "bizcircle queue migrate: %v\n", err)
		return exitFailure
	}
	where := "the search_path"
	if *q.schema != "" {
		where = "schema " + *q.schema
	}
	fmt.Fprintf(stdout, "bizcircle queue migrate: River's tables are up to date in %s\n", where)
	return exitOK
}

func runQueueFailed(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer) int {
	return listJobs(ctx, q, args, stdout, stderr, "failed", (*queue.Admin).Failed,
		"no failed jobs", "%d failed jobs; replay one with 'bizcircle queue replay ID'\n")
}

func runQueueReconcile(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer) int {
	return listJobs(ctx, q, args, stdout, stderr, "reconcile", (*queue.Admin).Unsynced,
		"every payment's points sync was acknowledged (or is older than the completed-job retention)",
		"%d payments without an acknowledged points sync\n")
}

// listJobs prints the jobs list returns, or none when there are none, and
// summary with their count.
func listJobs(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer, name string,
	list func(*queue.Admin, context.Context) ([]queue.Job, error), none, summary string) int {
	if ok, code := parseFlags(q.fs, q.synopsis, args, stdout, stderr); !ok {
		return code
	}
	a, closeFn, ok := q.admin(ctx, stderr)
	if !ok {
		return exitFailure
	}
	defer closeFn()
	jobs, err := list(a, ctx)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle queue %s: %v\n", name, err)
		return exitFailure
	}
	if len(jobs) == 0 {
		fmt.Fprintln(stdout, none)
		return exitOK
	}
	printJobs(stdout, jobs)
	fmt.Fprintf(stdout, summary, len(jobs))
	return exitOK
}

func runQueueReplay(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer) int {
	since := q.fs.String("discarded-since", "", "replay every dead letter discarded since `TIME` (RFC 3339, or a duration such as 24h)")
	ids, ok, code := parseIDs(q, args, stdout, stderr)
	if !ok {
		return code
	}
	if (*since == "") == (len(ids) == 0) {
		return usageError(stderr, q.fs, "give job IDs or --discarded-since, not both or neither")
	}
	var sinceTime time.Time
	if *since != "" {
		var err error
		if sinceTime, err = parseSince(*since, time.Now()); err != nil {
			return usageError(stderr, q.fs, "--discarded-since: %v", err)
		}
	}
	a, closeFn, ok := q.admin(ctx, stderr)
	if !ok {
		return exitFailure
	}
	defer closeFn()

	var replayed []queue.Job
	failed := 0
	if *since != "" {
		jobs, err := a.ReplayDiscarded(ctx, sinceTime)
		replayed = jobs
		if err != nil {
			fmt.Fprintf(stderr, "bizcircle queue replay: %v\n", err)
			failed++
		}
	}
	done, n := eachJob(ctx, a, (*queue.Admin).Replay, ids, "replay", stderr)
	return reportJobs(stdout, append(replayed, done...), failed+n,
		"%d jobs replayed: they run again as soon as a worker is free\n")
}

func runQueueCancel(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer) int {
	ids, ok, code := parseIDs(q, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(ids) == 0 {
		return usageError(stderr, q.fs, "give the IDs of the jobs to cancel")
	}
	a, closeFn, ok := q.admin(ctx, stderr)
	if !ok {
		return exitFailure
	}
	defer closeFn()
	cancelled, failed := eachJob(ctx, a, (*queue.Admin).Cancel, ids, "cancel", stderr)
	return reportJobs(stdout, cancelled, failed,
		"%d jobs cancelled: they run no more; 'bizcircle queue replay ID' runs one again\n")
}

// parseIDs parses args, flags then job IDs, with q's flag set. It returns
// ok when the command should run; otherwise code is the exit code, as
// parseFlags gives it.
func parseIDs(q *queueFlags, args []string, stdout, stderr io.Writer) (ids []int64, ok bool, code int) {
	switch err := q.fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, q.synopsis, "\nFlags:\n")
		q.fs.SetOutput(stdout)
		q.fs.PrintDefaults()
		q.fs.SetOutput(io.Discard)
		return nil, false, exitOK
	case err != nil:
		return nil, false, usageError(stderr, q.fs, "%v", err)
	}
	for _, s := range q.fs.Args() {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, false, usageError(stderr, q.fs, "%q is not a job ID", s)
		}
		ids = append(ids, id)
	}
	return ids, true, exitOK
}

// eachJob runs op on each job of ids, printing each error on stderr, and
// returns the jobs op changed and how many it did not.
func eachJob(ctx context.Context, a *queue.Admin, op func(*queue.Admin, context.Context, int64) (queue.Job, error),
	ids []int64, name string, stderr io.Writer) (changed []queue.Job, failed int) {
	for _, id := range ids {
		j, err := op(a, ctx, id)
		if err != nil {
			fmt.Fprintf(stderr, "bizcircle queue %s: %v\n", name, err)
			failed++
			continue
		}
		changed = append(changed, j)
	}
	return changed, failed
}

// reportJobs prints the jobs a command changed and summary with their
// count, and returns the exit code. When it changed none and failed, the
// errors already said it all: it prints nothing.
func reportJobs(stdout io.Writer, changed []queue.Job, failed int, summary string) int {
	if len(changed) > 0 {
		printJobs(stdout, changed)
	}
	if len(changed) > 0 || failed == 0 {
		fmt.Fprintf(stdout, summary, len(changed))
	}
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}

// parseSince reads an RFC 3339 time, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}

// printJobs prints jobs as a table; errors are cut to one short line.
func printJobs(w io.Writer, jobs []queue.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tKEY\tSTATE\tATTEMPTS\tCREATED\tLAST ERROR")
	for _, j := range jobs {
		key := j.Key
		if j.Kind == queue.KindNotification {
			key = strings.TrimPrefix(key, j.EventType+":")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.EventType, key, j.State,
			j.Attempt, j.MaxAttempts, j.CreatedAt.Local().Format(time.DateTime), oneLine(j.LastError, 100))
	}
	tw.Flush()
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

const queueWorkUsage = `Usage: bizcircle queue work [flags]

Receives notifications into the queue: with --addr it serves the queue-mode
endpoint, which verifies each notification with the keys from 'bizcircle
keygen' (the server's half) and stores it as a job, so 'bizcircle send' can
post to it. It processes no stored notification: that is the mall's own
worker, a program with the mall's callbacks (see package queue's example).

--demo-callbacks also runs workers that process stored notifications with
the print-only callbacks of 'bizcircle serve', with River's retries. Those
award no points and enqueue no points sync, yet mark each notification
processed for good. On a mall's database that loses real payments: their
points are never awarded, WeChat Pay's re-push is answered 204 as a
duplicate, 'queue replay' refuses them and 'queue reconcile' no longer lists
them. Use --demo-callbacks only on a test database.

SIGTERM or Ctrl-C stops it: with --demo-callbacks, running jobs get
--stop-timeout to finish, then roll back and run again later.
`

// demoOnlyFlags are the flags of queue work that only apply to the demo's
// workers.
var demoOnlyFlags = []string{"fail", "max-attempts", "stop-timeout", "workers"}

func runQueueWork(ctx context.Context, q *queueFlags, args []string, stdout, stderr io.Writer) int {
	fs := q.fs
	dir := fs.String("dir", defaultKeyDir, "`directory` of the keys written by 'bizcircle keygen'")
	addr := fs.String("addr", "", "receive notifications on `address` (e.g. 127.0.0.1:8080)")
	path := fs.String("path", "/wechat/bizcircle", "URL `path` of the notification endpoint, with --addr")
	demo := fs.Bool("demo-callbacks", false, "also process stored notifications with the demo's print-only callbacks: they complete\nreal notifications without awarding points or syncing them (test databases only)")
	workers := fs.Int("workers", queue.DefaultWorkers, "notification jobs run at once, with --demo-callbacks")
	fail := fs.Int("fail", 0, "fail each event's callback its first `N` runs, to watch River retry, with --demo-callbacks")
	stopTimeout := fs.Duration("stop-timeout", queue.DefaultStopTimeout, "how long running jobs may finish on SIGTERM, with --demo-callbacks")
	maxAttempts := fs.Int("max-attempts", queue.DefaultMaxAttempts, "attempts before a job is discarded (a dead letter), with --demo-callbacks")
	if ok, code := parseFlags(fs, q.synopsis, args, stdout, stderr); !ok {
		return code
	}
	if !*demo {
		for _, name := range demoOnlyFlags {
			if isSet(fs, name) {
				return usageError(stderr, fs, "--%s applies to the demo's workers: it needs --demo-callbacks", name)
			}
		}
		if *addr == "" {
			return usageError(stderr, fs, "nothing to run: give --addr to receive notifications; "+
				"only on a test database, --demo-callbacks processes them with print-only callbacks")
		}
	}
	if *workers < 1 || *maxAttempts < 1 || *fail < 0 || *stopTimeout <= 0 {
		return usageError(stderr, fs, "--workers, --max-attempts and --stop-timeout must be positive, --fail not negative")
	}
	if !strings.HasPrefix(*path, "/") {
		return usageError(stderr, fs, "--path %q must start with /", *path)
	}
	keys, err := loadServerKeys(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle queue work: %v\n", err)
		return exitFailure
	}
	conns := int32(8) // the endpoint's group commits and River's own
	if *demo {
		conns += int32(*workers)
	}
	pool, err := q.connect(ctx, conns)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle queue work: %v\n", err)
		return exitFailure
	}
	defer pool.Close()

	p := &printer{w: stdout}
	// Without --demo-callbacks the callbacks only say which events the
	// endpoint takes: no worker runs them.
	cb := &receiver{print: p.printf, failures: *fail, failed: map[string]int{}}
	verifier := verifiers.NewSHA256WithRSAPubkeyVerifier(keys.publicKeyID, *keys.publicKey)
	qu, err := queue.New(pool, keys.apiV3Key, verifier, cb, append(q.options(),
		queue.WithWorkers(*workers), queue.WithStopTimeout(*stopTimeout), queue.WithMaxAttempts(*maxAttempts),
		queue.WithBizcircle(bizcircle.WithObserver(queueObserver(p))))...)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle queue work: %v\n", err)
		return exitFailure
	}
	if *demo {
		err = qu.Start(ctx)
	} else {
		_, err = qu.River().JobList(ctx, river.NewJobListParams().First(1)) // River's tables are there
	}
	if err != nil {
		qu.Close()
		fmt.Fprintf(stderr, "bizcircle queue work: %v (did you run 'bizcircle queue migrate'?)\n", err)
		return exitFailure
	}
	var srv *http.Server
	errc := make(chan error, 1)
	listening := ""
	if *addr != "" {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			qu.Close()
			fmt.Fprintf(stderr, "bizcircle queue work: %v\n", err)
			return exitFailure
		}
		mux := http.NewServeMux()
		mux.Handle(*path, qu.Endpoint())
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		listening = fmt.Sprintf(", receiving on http://%s%s", ln.Addr(), *path)
	}
	if *demo {
		p.printf("bizcircle queue work: %d workers with the demo's print-only callbacks, which complete notifications without awarding points (public key %s)%s; SIGTERM or Ctrl-C stops",
			*workers, keys.publicKeyID, listening)
	} else {
		p.printf("bizcircle queue work: no workers, stored notifications wait for the mall's own (public key %s)%s; SIGTERM or Ctrl-C stops",
			keys.publicKeyID, listening)
	}

	code := exitOK
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "bizcircle queue work: %v\n", err)
		code = exitFailure
	case <-ctx.Done():
	}
	if *demo {
		p.printf("bizcircle queue work: stopping: running jobs get %v to finish", *stopTimeout)
	} else {
		p.printf("bizcircle queue work: stopping")
	}
	if srv != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "bizcircle queue work: %v\n", err)
			code = exitFailure
		}
	}
	if err := qu.Close(); err != nil {
		fmt.Fprintf(stderr, "bizcircle queue work: %v\n", err)
		code = exitFailure
	}
	p.printf("bizcircle queue work: stopped")
	return code
}

// queueObserver prints what the endpoint and the workers did.
func queueObserver(p *printer) func(bizcircle.Observation) {
	return func(o bizcircle.Observation) {
		switch o.Outcome {
		case bizcircle.OutcomeVerified:
		case bizcircle.OutcomeStored:
			p.printf("  → 204 stored %s id=%s: a worker processes it", o.EventType, o.NotificationID)
		case bizcircle.OutcomeDuplicate:
			p.printf("  → 204 duplicate %s id=%s: already stored, nothing inserted", o.EventType, o.NotificationID)
		case bizcircle.OutcomeProcessed:
			p.printf("  ✓ processed %s id=%s in %v", o.EventType, o.NotificationID, o.Duration.Round(time.Microsecond))
		case bizcircle.OutcomeFailed:
			if o.Err != nil && errors.Is(o.Err, queue.ErrStore) {
				p.printf("  → 500 not stored %s id=%s: %v", o.EventType, o.NotificationID, o.Err)
				return
			}
			p.printf("  ✗ failed %s id=%s: %v (River retries it while attempts remain)", o.EventType, o.NotificationID, o.Err)
		default:
			p.observe(o)
		}
	}
}
