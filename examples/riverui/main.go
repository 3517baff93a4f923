// Command riverui serves queue mode's notification endpoint and River's own
// web UI (riverqueue.com/riverui) on one http.ServeMux: POST
// /wechat/bizcircle stores each notification as a River job, and
// /riverui/ shows the jobs to operators.
//
// The UI is an operator tool: it can retry, cancel and delete jobs and
// pause queues. It sits behind HTTP basic auth, with the credentials in
// RIVERUI_BASIC_AUTH ("user:password"); the program refuses to start
// without them, unless --insecure-local serves everything on a loopback
// address for a developer's machine. In production put it behind your SSO
// or VPN as well, and never expose it on the public host WeChat Pay calls:
// route only POST /wechat/bizcircle there.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && DATABASE_URL=postgres://… go run ./riverui --keys ../bizcircle-keys --insecure-local
//	go run ./cmd/bizcircle send                       # in the repository root
//	open http://127.0.0.1:8080/riverui/
//
// With auth instead: RIVERUI_BASIC_AUTH=ops:$(openssl rand -hex 16) go run ./riverui …
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"
	"riverqueue.com/riverui"
)

// authEnv names the variable holding the UI's "user:password".
const authEnv = "RIVERUI_BASIC_AUTH"

// uiPrefix is where the UI is mounted; riverui needs it to build its links.
const uiPrefix = "/riverui"

// newRouter returns the notification endpoint at POST /wechat/bizcircle and
// River's UI for q's jobs under /riverui/, wrapped in protect. The UI's
// background services run until ctx is done.
func newRouter(ctx context.Context, q *queue.Queue, protect func(http.Handler) http.Handler, logger *slog.Logger) (http.Handler, error) {
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		// q's own client, so the UI reads the schema the queue writes.
		Endpoints: riverui.NewEndpoints(q.River(), nil),
		// Args are the signed envelope: ciphertext, noise in a list.
		JobListHideArgsByDefault: true,
		Logger:                   logger,
		Prefix:                   uiPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("riverui: %w", err)
	}
	if err := ui.Start(ctx); err != nil {
		return nil, fmt.Errorf("riverui: %w", err)
	}
	// The browser sends basic auth credentials on cross-site requests too,
	// so a page elsewhere could post to the UI's API: refuse those.
	operator := func(h http.Handler) http.Handler {
		return protect(http.NewCrossOriginProtection().Handler(h))
	}
	mux := http.NewServeMux()
	mux.Handle("POST /wechat/bizcircle", q.Endpoint()) // WeChat Pay signs; no auth here
	mux.Handle(uiPrefix+"/", operator(ui))
	mux.Handle("POST "+uiPrefix+"/api/jobs/retry", operator(retryByReplay(q.Admin(), logger)))
	mux.Handle("POST "+uiPrefix+"/api/jobs/cancel", operator(cancelByAdmin(q.Admin(), logger)))
	return mux, nil
}

// retryByReplay answers the UI's Retry button with [queue.Admin.Replay]
// instead of River's JobRetry, which also makes completed jobs run again:
// their callbacks would award points twice. Replay takes retrying,
// discarded and cancelled jobs, and refuses the others with 409. This
// program has only the queue's jobs; one that inserts other kinds through
// q.River() should send those to River's retry.
func retryByReplay(admin *queue.Admin, logger *slog.Logger) http.Handler {
	return jobAction("retried", admin.Replay, queue.ErrNotReplayable, "a completed job is never run again", logger)
}

// cancelByAdmin answers the UI's Cancel button with [queue.Admin.Cancel]
// instead of River's JobCancel, which also flags a running job: Cancel
// takes available, scheduled and retrying jobs, and refuses the others
// with 409.
func cancelByAdmin(admin *queue.Admin, logger *slog.Logger) http.Handler {
	return jobAction("cancelled", admin.Cancel, queue.ErrNotCancellable, "a running, completed or dead job is left as it is", logger)
}

// jobAction answers a riverui job request ({"ids": [...]}) by calling do on
// each job in turn; refused (with why) gives 409, a missing job 404.
func jobAction(done string, do func(context.Context, int64) (queue.Job, error), refused error, why string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			IDs []json.Number `json:"ids"` // the UI sends them as strings
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.IDs) == 0 || len(req.IDs) > 1000 {
			apiError(w, http.StatusBadRequest, "want {\"ids\": [...]} with 1 to 1000 job IDs")
			return
		}
		for i, n := range req.IDs {
			id, err := n.Int64()
			if err != nil {
				apiError(w, http.StatusBadRequest, "bad job ID "+n.String())
				return
			}
			_, err = do(r.Context(), id)
			switch {
			case errors.Is(err, refused):
				apiError(w, http.StatusConflict, fmt.Sprintf("%v (%s %d of %d); %s", err, done, i, len(req.IDs), why))
				return
			case errors.Is(err, rivertype.ErrNotFound):
				apiError(w, http.StatusNotFound, fmt.Sprintf("job %d not found (%s %d of %d)", id, done, i, len(req.IDs)))
				return
			case err != nil:
				logger.ErrorContext(r.Context(), "riverui: job "+done, "job_id", id, "err", err)
				apiError(w, http.StatusInternalServerError, fmt.Sprintf("job %d failed (%s %d of %d)", id, done, i, len(req.IDs)))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
}

// apiError writes an error as riverui's API does, for the UI to show.
func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}

// operatorAuth returns the UI's protection: basic auth with credentials
// ("user:password", from authEnv), or none when insecureLocal is set and
// addr is a loopback address. Anything else is an error: the program must
// not start with an open UI on a reachable address.
func operatorAuth(credentials string, insecureLocal bool, addr string) (func(http.Handler) http.Handler, error) {
	if insecureLocal {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--insecure-local needs a loopback --addr such as 127.0.0.1:8080, not %q", addr)
		}
	}
	if credentials == "" {
		if insecureLocal {
			return func(h http.Handler) http.Handler { return h }, nil
		}
		return nil, fmt.Errorf("%s is unset: set it to user:password for the UI's basic auth, or pass --insecure-local to serve on 127.0.0.1 without auth", authEnv)
	}
	user, password, ok := strings.Cut(credentials, ":")
	if !ok || user == "" || password == "" {
		return nil, fmt.Errorf("%s must be user:password, both non-empty", authEnv)
	}
	return basicAuth(user, password), nil
}

// basicAuth refuses requests without user and password with 401 and a
// challenge, so browsers ask for them. Hashing before the constant-time
// comparison keeps it from leaking the lengths.
func basicAuth(user, password string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(user + ":" + password))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			got := sha256.Sum256([]byte(u + ":" + p))
			if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="River UI", charset="UTF-8"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	keys := flag.String("keys", devkeys.DefaultDir, "directory written by 'bizcircle keygen'")
	insecureLocal := flag.Bool("insecure-local", false, "serve the UI without auth, on a loopback --addr only")
	flag.Parse()
	protect, err := operatorAuth(os.Getenv(authEnv), *insecureLocal, *addr)
	if err != nil {
		log.Fatal(err)
	}
	apiV3Key, verifier, err := devkeys.Load(*keys)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := queue.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	q, err := queue.New(pool, apiV3Key, verifier, devkeys.Callbacks())
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	// Not ctx: Close stops the workers, letting running jobs finish first.
	if err := q.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	r, err := newRouter(ctx, q, protect, slog.Default())
	if err != nil {
		log.Fatal(err)
	}

	srv := &http.Server{Addr: *addr, Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("listening on http://%s/wechat/bizcircle, River UI at http://%s%s/", *addr, *addr, uiPrefix)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
