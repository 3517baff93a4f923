package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/redis/go-redis/v9"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
)

const serveUsage = `Usage: bizcircle serve [flags]

A reference receiver built with the kit, for trying 'bizcircle send' or as a
template: it verifies notifications with the keys from 'bizcircle keygen'
(only the server's half: public key, public key ID, APIv3 key), runs each
event's callback once through the in-memory deduper (or Redis, shared by
several serve processes), and prints every event and every answer. Ctrl-C
stops it.

  --fail N      makes each event's callback fail its first N runs, to watch
                'bizcircle send --retry' recover
  --redis ADDR  dedupes in the Redis server at ADDR (host:port) instead of
                in memory, so several receivers share their keys
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve")
	addr := fs.String("addr", "127.0.0.1:8080", "`address` to listen on (port 0 picks a free one)")
	path := fs.String("path", "/wechat/bizcircle", "URL `path` of the notification endpoint")
	dir := fs.String("dir", defaultKeyDir, "`directory` of the keys written by 'bizcircle keygen'")
	fail := fs.Int("fail", 0, "fail each event's callback its first `N` times")
	redisAddr := fs.String("redis", "", "dedupe in the Redis server at `host:port` instead of in memory")
	if ok, code := parseFlags(fs, serveUsage, args, stdout, stderr); !ok {
		return code
	}
	if !strings.HasPrefix(*path, "/") {
		return usageError(stderr, fs, "--path %q must start with /", *path)
	}
	if *fail < 0 {
		return usageError(stderr, fs, "--fail must not be negative")
	}
	keys, err := loadServerKeys(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle serve: %v\n", err)
		return exitFailure
	}

	opts := []bizcircle.Option{} // New's default deduper: in memory
	dedupeName := "in-memory deduper"
	if *redisAddr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil {
			fmt.Fprintf(stderr, "bizcircle serve: redis %s: %v\n", *redisAddr, err)
			return exitFailure
		}
		dedupe, err := redisdedupe.New(rdb)
		if err != nil {
			fmt.Fprintf(stderr, "bizcircle serve: %v\n", err)
			return exitFailure
		}
		opts = append(opts, bizcircle.WithDeduper(dedupe))
		dedupeName = "Redis deduper at " + *redisAddr
	}

	p := &printer{w: stdout}
	cb := &receiver{print: p.printf, failures: *fail, failed: map[string]int{}}
	// The whole endpoint: what a mall's server does with its real keys.
	verifier := verifiers.NewSHA256WithRSAPubkeyVerifier(keys.publicKeyID, *keys.publicKey)
	h, err := bizcircle.New(keys.apiV3Key, verifier, cb, append(opts,
		bizcircle.WithObserver(p.observe),
		bizcircle.WithLogger(slog.New(slog.DiscardHandler)))...) // the observer prints instead
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle serve: %v\n", err)
		return exitFailure
	}
	mux := http.NewServeMux()
	mux.Handle(*path, h)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle serve: %v\n", err)
		return exitFailure
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	p.printf("bizcircle serve: listening on http://%s%s (public key %s, %s); Ctrl-C stops", ln.Addr(), *path, keys.publicKeyID, dedupeName)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "bizcircle serve: %v\n", err)
		return exitFailure
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "bizcircle serve: %v\n", err)
		return exitFailure
	}
	p.printf("bizcircle serve: stopped")
	return exitOK
}

// receiver is serve's Callbacks: it prints each event. Put a mall's business
// logic where it prints.
type receiver struct {
	print    func(format string, args ...any)
	failures int // --fail

	mu     sync.Mutex
	failed map[string]int // business ID → failures so far
}

func (r *receiver) OnPayment(ctx context.Context, e *bizcircle.PaymentEvent) error {
	r.print("payment        openid=%s transaction_id=%s amount=%d shop=%q time_end=%s",
		e.OpenID, e.TransactionID, e.Amount, e.ShopName, e.TimeEnd.Format(time.RFC3339))
	return r.maybeFail(bizcircle.EventPayment + ":" + e.TransactionID)
}

func (r *receiver) OnRefund(ctx context.Context, e *bizcircle.RefundEvent) error {
	r.print("refund         openid=%s transaction_id=%s refund_id=%s refund_amount=%d pay_amount=%d",
		e.OpenID, e.TransactionID, e.RefundID, e.RefundAmount, e.PayAmount)
	return r.maybeFail(bizcircle.EventRefund + ":" + e.RefundID)
}

func (r *receiver) OnAuthorization(ctx context.Context, e *bizcircle.AuthorizationEvent) error {
	r.print("authorization  openid=%s code=%s auth_type=%s", e.OpenID, e.Code, e.AuthType)
	key := bizcircle.EventAuthorization + ":" + e.OpenID
	if n, ok := bizcircle.NotificationFromContext(ctx); ok {
		key = bizcircle.EventAuthorization + ":" + n.ID
	}
	return r.maybeFail(key)
}

// maybeFail fails the first r.failures runs for key.
func (r *receiver) maybeFail(key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed[key] >= r.failures {
		return nil
	}
	r.failed[key]++
	return fmt.Errorf("failing on purpose (serve --fail %d): run %d", r.failures, r.failed[key])
}

// printer writes whole lines to w, one at a time.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// observe prints each answer the kit gives, through WithObserver.
func (p *printer) observe(o bizcircle.Observation) {
	d := o.Duration.Round(time.Microsecond)
	switch o.Outcome {
	case bizcircle.OutcomeVerified:
		// The dispatcher reports what happened next.
	case bizcircle.OutcomeRejected:
		what := "request " + o.RequestID
		if o.NotificationID != "" {
			what = o.EventType + " id=" + o.NotificationID
		}
		p.printf("  → %d rejected %s: %v", bizcircle.StatusCode(o.Err), what, o.Err)
	case bizcircle.OutcomeFailed:
		p.printf("  → %d failed %s id=%s: %v", bizcircle.StatusCode(o.Err), o.EventType, o.NotificationID, o.Err)
	case bizcircle.OutcomeDuplicate:
		p.printf("  → 204 duplicate %s id=%s: already processed, callback not run", o.EventType, o.NotificationID)
	default:
		p.printf("  → 204 %s %s id=%s in %v", o.Outcome, o.EventType, o.NotificationID, d)
	}
}
