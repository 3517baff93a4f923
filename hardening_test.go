package bizcircle_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// countingHandler counts records and keeps the longest.
type countingHandler struct {
	level   slog.Level
	records atomic.Int64
	longest atomic.Int64
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *countingHandler) WithGroup(string) slog.Handler                { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	var buf bytes.Buffer
	_ = slog.NewTextHandler(&buf, nil).Handle(context.Background(), r)
	h.records.Add(1)
	for n := int64(buf.Len()); ; {
		old := h.longest.Load()
		if n <= old || h.longest.CompareAndSwap(old, n) {
			break
		}
	}
	return nil
}

func TestForgedFloodIsLoggedBounded(t *testing.T) {
	logs := &countingHandler{level: slog.LevelDebug}
	var rejected atomic.Int64
	h := newEndpoint(t, platform, &recorder{}, bizcircle.WithLogger(slog.New(logs)),
		bizcircle.WithObserver(func(o bizcircle.Observation) {
			if o.Outcome == bizcircle.OutcomeRejected {
				rejected.Add(1)
			}
		}))
	big := strings.Repeat("A", 8<<10)
	const forged = 2000
	for range forged {
		r := platform.Payment(bizcircletest.SamplePayment()).Request("/notify")
		r.Header.Set(bizcircle.HeaderSerial, big)
		r.Header.Set(bizcircle.HeaderRequestID, big)
		if w := serve(h, r); w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", w.Code)
		}
	}
	if rejected.Load() != forged {
		t.Errorf("observer saw %d rejections, want all %d", rejected.Load(), forged)
	}
	if n := logs.records.Load(); n > 200 {
		t.Errorf("%d log records for %d forged requests, want at most 200", n, forged)
	}
	if n := logs.longest.Load(); n > 400 {
		t.Errorf("longest record %d bytes, want at most 400", n)
	}
}

func TestDuplicatesAreNotLoggedAtInfo(t *testing.T) {
	logs := &countingHandler{level: slog.LevelInfo}
	h := newEndpoint(t, platform, &recorder{}, bizcircle.WithLogger(slog.New(logs)))
	m := platform.Payment(bizcircletest.SamplePayment())
	for range 5 {
		if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
			t.Fatalf("status %d, want 204", w.Code)
		}
	}
	if n := logs.records.Load(); n != 0 {
		t.Errorf("%d records at Info for one event and four duplicates, want none", n)
	}
}

func TestIgnoredEventsAreLoggedBounded(t *testing.T) {
	logs := &countingHandler{level: slog.LevelDebug}
	h := newEndpoint(t, platform, &recorder{}, bizcircle.WithLogger(slog.New(logs)))
	for range 200 {
		m := platform.Notify("COUPON.USE", "coupon", "", []byte(`{}`))
		if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
			t.Fatalf("status %d, want 204", w.Code)
		}
	}
	if n := logs.records.Load(); n == 0 || n > 20 {
		t.Errorf("%d records for 200 ignored events, want between 1 and 20", n)
	}
}

func TestBodyConsumedBeforeTheMiddleware(t *testing.T) {
	tests := []struct {
		name    string
		before  func(r *http.Request)
		status  int
		wantErr error
	}{
		{"a middleware drained it", func(r *http.Request) { _, _ = io.ReadAll(r.Body) }, 500, bizcircle.ErrBodyConsumed},
		{"a middleware closed it", func(r *http.Request) { _ = r.Body.Close() }, 500, bizcircle.ErrBodyConsumed},
		{"a middleware swapped in NoBody", func(r *http.Request) { r.Body = http.NoBody }, 500, bizcircle.ErrBodyConsumed},
		{"a middleware read it and gave it back", func(r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(raw))
		}, 204, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			var errs []error
			cb := &recorder{}
			h := newEndpoint(t, platform, cb, bizcircle.WithLogger(logs.logger()),
				bizcircle.WithObserver(func(o bizcircle.Observation) { errs = append(errs, o.Err) }))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.before(r)
				h.ServeHTTP(w, r)
			}))
			defer srv.Close()
			m := platform.Payment(bizcircletest.SamplePayment())
			req, _ := m.NewRequest(context.Background(), srv.URL)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.wantErr == nil {
				return
			}
			if string(body) != failBody("request body already consumed") {
				t.Errorf("body %s", body)
			}
			if len(errs) == 0 || !errors.Is(errs[0], tc.wantErr) {
				t.Errorf("observed %v, want %v", errs, tc.wantErr)
			}
			if cb.calls.Load() != 0 {
				t.Error("a callback ran")
			}
			if !strings.Contains(logs.String(), "mount the endpoint before that middleware") {
				t.Errorf("log does not say how to fix it:\n%s", logs.String())
			}
		})
	}
}

func TestNilDeduperIsRefused(t *testing.T) {
	var typedNil *bizcircle.MemoryDeduper // as from an ignored constructor error
	for name, d := range map[string]bizcircle.Deduper{"nil": nil, "a typed nil": typedNil} {
		t.Run(name, func(t *testing.T) {
			if _, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), &recorder{}, bizcircle.WithDeduper(d)); err == nil {
				t.Error("New: no error")
			}
			defer func() {
				if recover() == nil {
					t.Error("NewHandler: no panic")
				}
			}()
			bizcircle.NewHandler(&recorder{}, bizcircle.WithDeduper(d))
		})
	}
}

func TestDecodeAcceptsAnyHeaderCaseAndAppliesTheBodyLimit(t *testing.T) {
	m := platform.Payment(bizcircletest.SamplePayment())
	lower := map[string][]string{}
	for k, v := range m.Header {
		lower[strings.ToLower(k)] = v
	}
	dec, err := bizcircle.NewDecoder(platform.APIv3Key, platform.Verifier(), bizcircle.WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	n, err := dec.Decode(context.Background(), lower, m.Body)
	if err != nil || n.ID != m.ID || n.RequestID != m.Header.Get(bizcircle.HeaderRequestID) {
		t.Fatalf("lower-case headers: %v, %+v", err, n)
	}

	small, _ := bizcircle.NewDecoder(platform.APIv3Key, platform.Verifier(), bizcircle.WithClock(fixedClock),
		bizcircle.WithMaxBodyBytes(int64(len(m.Body)-1)), bizcircle.WithLogger(discardLogger))
	if _, err := small.Decode(context.Background(), m.Header, m.Body); !errors.Is(err, bizcircle.ErrBodyTooLarge) {
		t.Errorf("over the limit: %v, want ErrBodyTooLarge", err)
	}
}

func TestSubSecondToleranceIsExact(t *testing.T) {
	now := epoch.Add(600 * time.Millisecond)
	tests := []struct {
		tolerance time.Duration
		ts        time.Time
		want      int
	}{
		{500 * time.Millisecond, epoch, 401},                    // 0.6 s off
		{500 * time.Millisecond, epoch.Add(time.Second), 204},   // 0.4 s off
		{1500 * time.Millisecond, epoch.Add(-time.Second), 401}, // 1.6 s off
		{1500 * time.Millisecond, epoch.Add(2 * time.Second), 204},
	}
	for _, tc := range tests {
		h := newEndpoint(t, platform, &recorder{}, bizcircle.WithTolerance(tc.tolerance),
			bizcircle.WithClock(func() time.Time { return now }), bizcircle.WithLogger(discardLogger))
		if w := serve(h, withTimestamp(tc.ts)()); w.Code != tc.want {
			t.Errorf("tolerance %v, timestamp %v off: status %d, want %d", tc.tolerance, now.Sub(tc.ts), w.Code, tc.want)
		}
	}
}

func TestWithCallbackTimeout(t *testing.T) {
	// In a synctest bubble the 4-second timeout passes at once, exactly.
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		var ran time.Duration
		h := newEndpoint(t, platform, bizcircle.CallbackFuncs{Payment: func(ctx context.Context, _ *bizcircle.PaymentEvent) error {
			start := time.Now()
			<-ctx.Done()
			ran = time.Since(start)
			return ctx.Err()
		}}, bizcircle.WithCallbackTimeout(4*time.Second), bizcircle.WithLogger(logs.logger()))
		w := serve(h, platform.Payment(bizcircletest.SamplePayment()).Request("/notify"))
		if w.Code != http.StatusInternalServerError || w.Body.String() != failBody("callback failed") {
			t.Fatalf("got %d %s, want 500 callback failed", w.Code, w.Body)
		}
		if ran != 4*time.Second {
			t.Errorf("the callback's ctx ended after %v, want 4s", ran)
		}
		if !strings.Contains(logs.String(), "WithCallbackTimeout 4s") {
			t.Errorf("log does not name the timeout:\n%s", logs.String())
		}
	})
	if _, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), &recorder{}, bizcircle.WithCallbackTimeout(0)); err == nil {
		t.Error("WithCallbackTimeout(0): no error")
	}
}

func TestHangUpDuringTheCallbackIsLogged(t *testing.T) {
	var logs logBuffer
	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	h := newEndpoint(t, platform, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error {
		hangUp() // WeChat Pay gives up while the callback works
		return nil
	}}, bizcircle.WithLogger(logs.logger()))
	r := platform.Payment(bizcircletest.SamplePayment()).Request("/notify").WithContext(ctx)
	serve(h, r)
	if !strings.Contains(logs.String(), "the callback's context ended while it ran") || !strings.Contains(logs.String(), "callback_duration=") {
		t.Errorf("no hang-up line with the duration:\n%s", logs.String())
	}
}
