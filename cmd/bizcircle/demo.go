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
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	mallapi "github.com/go-bizcircle/bizcircle/client"
)

const demoUsage = `Usage: bizcircle demo [--queue]

Runs the whole flow locally, with no setup: a test WeChat Pay platform
(bizcircletest) sends notifications through real HTTP on 127.0.0.1 to
bizcircle.New with the in-memory deduper, whose callbacks keep a points
ledger. It delivers a payment, a duplicate of it, a refund, a tampered
notification, and a payment whose callback fails once and succeeds on
WeChat Pay's retry 15 seconds later (simulated: the demo does not wait).
One line per delivery: what was sent, the answer, what the callbacks did.

Exits 0 when every delivery was answered as expected, 1 otherwise.
`

// A demoStep is one notification the demo delivers, and what each of its
// attempts should get.
type demoStep struct {
	what  string
	msg   *bizcircletest.Message
	plain bool // send msg as it is: do not re-sign it
	want  []demoWant
}

type demoWant struct {
	status  int
	outcome bizcircle.Outcome
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo")
	queueMode := fs.Bool("queue", false, "run queue mode on PostgreSQL ($DATABASE_URL) instead")
	if ok, code := parseFlags(fs, demoUsage+demoQueueUsage, args, stdout, stderr); !ok {
		return code
	}
	if *queueMode {
		return runDemoQueue(ctx, stdout, stderr)
	}

	// One fake clock for the platform, the kit and the retries, so WeChat
	// Pay's retry 15 seconds later happens at once and still verifies.
	clock := bizcircletest.NewClock(time.Now())
	platform := bizcircletest.NewPlatform()
	platform.Now = clock.Now
	var err error
	shop := newMall()
	// A fake WeChat Pay API that checks the merchant's signatures, for the
	// points sync after each payment.
	fakeAPI := bizcircletest.NewAPIServer(platform, bizcircletest.NewMerchant())
	defer fakeAPI.Close()
	if shop.api, err = mallapi.New(fakeAPI.NewClient()); err != nil {
		fmt.Fprintf(stderr, "bizcircle demo: %v\n", err)
		return exitFailure
	}
	var seen outcomes
	h, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), shop,
		bizcircle.WithClock(clock.Now),
		bizcircle.WithObserver(seen.observe),
		bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle demo: %v\n", err)
		return exitFailure
	}
	url, stop, err := serveLoopback(h)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle demo: %v\n", err)
		return exitFailure
	}
	defer stop()

	payment := bizcircletest.SamplePayment()
	paid := platform.Payment(payment)
	refund := bizcircletest.SampleRefund(payment)
	forged := bizcircletest.SamplePayment()
	flaky := bizcircletest.SamplePayment()
	flaky.Amount = 500
	shop.failNext(flaky.TransactionID, 1)

	ok, no := demoWant{http.StatusNoContent, bizcircle.OutcomeProcessed}, demoWant{http.StatusUnauthorized, bizcircle.OutcomeRejected}
	steps := []demoStep{
		{what: "payment, " + yuan(payment.Amount), msg: paid, want: []demoWant{ok}},
		{what: "the same payment again (duplicate)", msg: paid,
			want: []demoWant{{http.StatusNoContent, bizcircle.OutcomeDuplicate}}},
		{what: "refund of it, " + yuan(refund.RefundAmount), msg: platform.Refund(refund), want: []demoWant{ok}},
		{what: "payment changed after signing", msg: tamper(platform.Payment(forged)), plain: true, want: []demoWant{no}},
		{what: "payment, " + yuan(flaky.Amount), msg: platform.Payment(flaky),
			want: []demoWant{{http.StatusInternalServerError, bizcircle.OutcomeFailed}, ok}},
	}

	fmt.Fprintf(stdout, "bizcircle demo: a test WeChat Pay platform → bizcircle.New with the in-memory deduper at %s\n\n", url)
	client := &http.Client{Timeout: bizcircletest.DefaultAttemptTimeout}
	deliveries, unexpected := 0, 0
	for i, step := range steps {
		d := &bizcircletest.Deliverer{Platform: platform, Sleep: clock.Sleep, Client: client, Schedule: []time.Duration{}}
		if step.plain {
			d.Platform = nil
		}
		if len(step.want) > 1 {
			d.Schedule = nil // WeChat Pay's schedule, until 200 or 204
		}
		d.OnAttempt = func(a bizcircletest.Attempt) {
			deliveries++
			what := step.what
			if len(step.want) > 1 {
				what += fmt.Sprintf(", attempt %d at +%v", a.N, a.Offset)
			}
			outcome, actions := seen.take(), shop.takeActions()
			did := outcome.String() + ": "
			if len(actions) == 0 {
				did += "no callback ran"
			}
			did += strings.Join(actions, "; ")
			line := fmt.Sprintf("%d. %-46s → %s | %s | %s", i+1, what, answer(a), did, a.Latency.Round(10*time.Microsecond))
			if a.N > len(step.want) || !step.want[a.N-1].met(a, outcome, actions) {
				unexpected++
				line += "  ✗ UNEXPECTED"
			}
			fmt.Fprintln(stdout, line)
		}
		attempts, err := d.DeliverURL(ctx, url, step.msg)
		if err != nil && !errors.Is(err, bizcircletest.ErrNotAcknowledged) {
			fmt.Fprintf(stderr, "bizcircle demo: %v\n", err)
			return exitFailure
		}
		if len(attempts) != len(step.want) {
			unexpected++
			fmt.Fprintf(stdout, "   ✗ UNEXPECTED: %d attempts, want %d\n", len(attempts), len(step.want))
		}
	}

	fmt.Fprintln(stdout)
	syncs := fakeAPI.CallsTo(bizcircletest.PathPointsNotify)
	for _, c := range syncs {
		fmt.Fprintf(stdout, "fake WeChat Pay API got %s %s %s → %d\n", c.Method, c.Path, c.Body, c.Status)
	}
	if len(syncs) != 2 {
		unexpected++
		fmt.Fprintf(stdout, "   ✗ UNEXPECTED: %d points syncs, want 2\n", len(syncs))
	}
	fmt.Fprintln(stdout)
	if unexpected > 0 {
		fmt.Fprintf(stdout, "demo: %d of %d deliveries did not behave as expected\n", unexpected, deliveries)
		return exitFailure
	}
	fmt.Fprintf(stdout, "demo: all %d deliveries behaved as expected: each event's callback succeeded once, the duplicate and the forgery ran none, and the failure was retried.\n", deliveries)
	return exitOK
}

// met reports whether an attempt got what w wants: the status, the kit's
// outcome, and one callback action exactly when a callback ran.
func (w demoWant) met(a bizcircletest.Attempt, outcome bizcircle.Outcome, actions []string) bool {
	ran := outcome == bizcircle.OutcomeProcessed || outcome == bizcircle.OutcomeFailed
	return a.Err == nil && a.Status == w.status && outcome == w.outcome && (len(actions) == 1) == ran
}

// outcomes keeps the last outcome the kit reported, through WithObserver.
type outcomes struct {
	mu   sync.Mutex
	last bizcircle.Outcome
}

func (o *outcomes) observe(obs bizcircle.Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = obs.Outcome
}

func (o *outcomes) take() bizcircle.Outcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	last := o.last
	o.last = 0
	return last
}

// serveLoopback serves h at /wechat/bizcircle on a free 127.0.0.1 port and returns
// its URL and a function that stops it.
func serveLoopback(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/wechat/bizcircle", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/wechat/bizcircle", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// answer formats an attempt's answer: status, and the body if any.
func answer(a bizcircletest.Attempt) string {
	if a.Err != nil {
		return "error: " + a.Err.Error()
	}
	s := fmt.Sprintf("%d %s", a.Status, http.StatusText(a.Status))
	if body := strings.TrimSpace(string(a.Body)); body != "" {
		s = fmt.Sprintf("%d %s", a.Status, body)
	}
	return s
}

// yuan formats an amount in fen.
func yuan(fen int64) string { return fmt.Sprintf("%d.%02d yuan", fen/100, fen%100) }
