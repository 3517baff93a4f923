// Command riverui serves queue mode's notification endpoint and River's own
// web UI (riverqueue.com/riverui) beside it: jobs, their attempts and
// errors, retry and cancel buttons. The UI is an operator tool that can
// retry, cancel and delete jobs, so it sits behind HTTP basic auth here;
// in production put it behind your single sign-on or VPN as well, on an
// internal address, never on the public host WeChat Pay calls. It shows no
// plaintext: jobs hold the signed, encrypted envelope.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	export DATABASE_URL=postgres://…                  # a PostgreSQL database
//	cd examples && RIVERUI_PASSWORD=… go run ./riverui --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send                       # in the repository root
//	open http://127.0.0.1:8080/riverui/               # user "operator"
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"riverqueue.com/riverui"
)

// operator is the basic-auth user of the UI.
const operator = "operator"

// newServer returns the mall's routes: the queue-mode notification endpoint
// at POST /wechat/bizcircle and River's UI at /riverui/ for the operator
// with password. It starts the UI's background services with ctx; close
// the Queue when done.
func newServer(ctx context.Context, pool *pgxpool.Pool, apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, password string, opts ...queue.Option) (http.Handler, *queue.Queue, error) {
	if password == "" {
		return nil, nil, errors.New("riverui: set a password for the UI (RIVERUI_PASSWORD)")
	}
	q, err := queue.New(pool, apiV3Key, verifier, cb, opts...)
	if err != nil {
		return nil, nil, err
	}
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints:                riverui.NewEndpoints(q.River(), nil),
		JobListHideArgsByDefault: true, // ciphertext anyway
		Logger:                   slog.Default(),
		Prefix:                   "/riverui",
	})
	if err == nil {
		err = ui.Start(ctx)
	}
	if err != nil {
		q.Close()
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /wechat/bizcircle", q.Endpoint())
	mux.Handle("/riverui/", operatorOnly(password, ui))
	return mux, q, nil
}

// operatorOnly lets requests through with the operator's basic-auth
// credentials, comparing them in constant time, and answers 401 otherwise.
func operatorOnly(password string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(operator + ":" + password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		got := sha256.Sum256([]byte(user + ":" + pass))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="River UI", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	keys := flag.String("keys", devkeys.DefaultDir, "directory written by 'bizcircle keygen'")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	apiV3Key, verifier, err := devkeys.Load(*keys)
	if err != nil {
		log.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := queue.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	h, q, err := newServer(ctx, pool, apiV3Key, verifier, devkeys.Callbacks(), os.Getenv("RIVERUI_PASSWORD"))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	if err := q.Start(ctx); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: h}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	log.Printf("notifications: http://%s/wechat/bizcircle; River UI: http://%s/riverui/ (user %s)", *addr, *addr, operator)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
