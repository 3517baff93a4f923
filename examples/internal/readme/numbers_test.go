package readme

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/jackc/pgx/v5/pgxpool"
)

// readmeText returns the README with every run of white space made one
// space, so that a phrase is found wherever the lines wrap.
func readmeText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// TestPoolSizesStated checks the pool sizes the README gives for queue mode
// and for the outbox against those Queue.Start and Outbox.Start ask for, as
// the README's snippets configure them (WithPointsClient with
// DefaultSyncWorkers): the number in their warning about a pool too small.
// The pool has one connection and no server behind it; Start fails after
// the warning.
func TestPoolSizesStated(t *testing.T) {
	readme := readmeText(t)
	platform := bizcircletest.NewPlatform()
	api := bizcircletest.NewAPIServer(platform, bizcircletest.NewMerchant())
	t.Cleanup(api.Close)
	bc, err := client.New(api.NewClient())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(t.Context(), "postgres://127.0.0.1:1/none?pool_max_conns=1&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	var h wantHandler
	opts := []queue.Option{queue.WithPointsClient(bc, queue.DefaultSyncWorkers), queue.WithLogger(slog.New(&h))}
	q, err := queue.New(pool, platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	queueNeed := h.need(t, q.Start, q.Close)
	outbox, err := queue.NewOutbox(pool, platform.APIv3Key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	outboxNeed := h.need(t, outbox.Start, outbox.Close)

	for _, phrase := range []string{
		fmt.Sprintf("pool_max_conns at least %d (%d workers + %d sync workers + %d for River)",
			queueNeed, queue.DefaultWorkers, queue.DefaultSyncWorkers, queueNeed-queue.DefaultWorkers-queue.DefaultSyncWorkers),
		fmt.Sprintf("the outbox needs `pool_max_conns` at least %d (%d sync workers + %d for River) more than the callbacks need",
			outboxNeed, queue.DefaultSyncWorkers, outboxNeed-queue.DefaultSyncWorkers),
	} {
		if !strings.Contains(readme, phrase) {
			t.Errorf("README.md does not say %q", phrase)
		}
	}
}

// A wantHandler is a slog.Handler that keeps the last want_at_least
// attribute logged.
type wantHandler struct {
	mu   sync.Mutex
	want int64
}

func (h *wantHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *wantHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *wantHandler) WithGroup(string) slog.Handler            { return h }
func (h *wantHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "want_at_least" {
			h.mu.Lock()
			h.want = a.Value.Int64()
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

// need starts and closes a Queue or an Outbox on a pool of one connection
// and returns the connections its warning asked for.
func (h *wantHandler) need(t *testing.T, start func(context.Context) error, stop func() error) int {
	t.Helper()
	h.mu.Lock()
	h.want = 0
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // no server to reach: Start fails, after the warning
	_ = start(ctx)
	if err := stop(); err != nil {
		t.Log(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.want == 0 {
		t.Fatal("Start logged no want_at_least for a pool of one connection")
	}
	return int(h.want)
}

// TestDefaultsStated checks defaults the README states against the
// constants of the code.
func TestDefaultsStated(t *testing.T) {
	readme := readmeText(t)
	// River rescues a running job an hour after the job timeout.
	const riverRescueAfter = time.Hour
	for _, phrase := range []string{
		// Queue mode.
		fmt.Sprintf("Completed jobs are kept %.0f hours", queue.DefaultCompletedRetention.Hours()),
		fmt.Sprintf("answered 500 within %.0f seconds (`WithInsertTimeout`)", queue.DefaultInsertTimeout.Seconds()),
		fmt.Sprintf("%d attempts over about 20 days", queue.DefaultMaxAttempts),
		fmt.Sprintf("kept %.0f days for replay", queue.DefaultDiscardedRetention.Hours()/24),
		fmt.Sprintf("the last two kept %.0f days, `WithDiscardedRetention`", queue.DefaultDiscardedRetention.Hours()/24),
		fmt.Sprintf("job timeout: %.0f minutes by default", (queue.DefaultJobTimeout + riverRescueAfter).Minutes()),
		fmt.Sprintf("running jobs get %.0f s", queue.DefaultStopTimeout.Seconds()),
		fmt.Sprintf("running syncs get %.0f s", queue.DefaultStopTimeout.Seconds()),
		fmt.Sprintf("%d workers per process (`WithWorkers`", queue.DefaultWorkers),
		fmt.Sprintf("fetch cooldown %d ms (`WithFetchCooldown`", queue.DefaultFetchCooldown.Milliseconds()),
		// Redis.
		fmt.Sprintf("mark it done for %.0f hours", redisdedupe.DefaultTTL.Hours()),
		fmt.Sprintf("the lease (default %.0f s, renewed every %.0f s", redisdedupe.DefaultLease.Seconds(), (redisdedupe.DefaultLease / 3).Seconds()),
		fmt.Sprintf("a sixth of the lease, %.0f s", (redisdedupe.DefaultLease / 6).Seconds()),
	} {
		if !strings.Contains(readme, phrase) {
			t.Errorf("README.md does not say %q", phrase)
		}
	}
}
