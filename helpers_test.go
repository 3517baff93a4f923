package bizcircle_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// The RSA keys are made once: key generation is the slow part of a test.
var (
	platform     = bizcircletest.NewPlatform()
	certPlatform = bizcircletest.NewCertificatePlatform()
	otherKey     = bizcircletest.NewPlatform()
)

// epoch is the fixed time of the tests' clocks.
var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))

func fixedClock() time.Time { return epoch }

func init() {
	platform.Now = fixedClock
	certPlatform.Now = fixedClock
	otherKey.Now = fixedClock
}

// recorder counts and keeps the events its callbacks receive.
type recorder struct {
	mu       sync.Mutex
	payments []bizcircle.PaymentEvent
	refunds  []bizcircle.RefundEvent
	auths    []bizcircle.AuthorizationEvent
	calls    atomic.Int64
	fail     func() error // the error each callback returns, if set
}

func (r *recorder) record(add func()) error {
	r.calls.Add(1)
	r.mu.Lock()
	add()
	r.mu.Unlock()
	if r.fail != nil {
		return r.fail()
	}
	return nil
}

func (r *recorder) OnPayment(_ context.Context, e *bizcircle.PaymentEvent) error {
	return r.record(func() { r.payments = append(r.payments, *e) })
}

func (r *recorder) OnRefund(_ context.Context, e *bizcircle.RefundEvent) error {
	return r.record(func() { r.refunds = append(r.refunds, *e) })
}

func (r *recorder) OnAuthorization(_ context.Context, e *bizcircle.AuthorizationEvent) error {
	return r.record(func() { r.auths = append(r.auths, *e) })
}

// logBuffer collects every log record, to check what is never logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newEndpoint returns the whole endpoint for p with a fixed clock.
func newEndpoint(t testing.TB, p *bizcircletest.Platform, cb bizcircle.Callbacks, opts ...bizcircle.Option) http.Handler {
	t.Helper()
	opts = append([]bizcircle.Option{bizcircle.WithClock(fixedClock)}, opts...)
	h, err := bizcircle.New(p.APIv3Key, p.Verifier(), cb, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func failBody(msg string) string { return `{"code":"FAIL","message":"` + msg + `"}` }

var discardLogger = slog.New(slog.DiscardHandler)

// memory is NewMemoryDeduper for tests: an error fails tb.
func memory(tb testing.TB, opts ...bizcircle.Option) *bizcircle.MemoryDeduper {
	tb.Helper()
	d, err := bizcircle.NewMemoryDeduper(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
