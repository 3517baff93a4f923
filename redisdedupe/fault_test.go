package redisdedupe_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/redis/go-redis/v9"
)

// redisServer is a private redis-server that a test stops and starts again
// on the same port. It keeps an append-only file synced on every write, so
// completed keys survive a crash, as they should in production.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	addr string

	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedis starts a redis-server on a free loopback port, killed when t
// ends. The binary is $BIZCIRCLE_REDIS_SERVER, else redis-server on PATH;
// without one the test is skipped, but under CI=true it fails.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin := os.Getenv("BIZCIRCLE_REDIS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			testenv.Missing(t, "no redis-server on PATH and BIZCIRCLE_REDIS_SERVER is unset: the fault test needs one to stop and restart")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &redisServer{t: t, bin: bin, dir: t.TempDir(), addr: addr}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs the server and returns once it answers.
func (s *redisServer) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	s.cmd = exec.Command(s.bin, "--bind", "127.0.0.1", "--port", port, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", s.bin, err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server on %s exited:\n%s", s.addr, log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s does not answer", s.addr)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// stop kills the server, as a crash would, and waits for it to exit.
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func TestRedisFault(t *testing.T) {
	srv := startRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.addr})
	t.Cleanup(func() { c.Close() })
	wechat := bizcircletest.NewPlatform()
	var l ledger
	var down atomic.Bool
	payment := func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		if down.Load() {
			t.Errorf("the callback ran for %s while Redis was down", e.TransactionID)
		}
		l.add(e.TransactionID)
		return nil
	}
	url := newServer(t, wechat, c, "bizcircletest:fault:", payment).URL
	once := &bizcircletest.Deliverer{Platform: wechat, Schedule: []time.Duration{}}
	payments := func(ids ...string) []*bizcircletest.Message {
		var ms []*bizcircletest.Message
		for _, id := range ids {
			pay := bizcircletest.SamplePayment()
			pay.TransactionID = id
			ms = append(ms, wechat.Payment(pay))
		}
		return ms
	}

	// Before the fault, a payment is processed.
	early := payments("4200000300")[0]
	if attempts, err := once.DeliverURL(context.Background(), url, early); err != nil {
		t.Fatalf("before the fault: %v, answered %d %s", err, attempts[0].Status, attempts[0].Body)
	}

	// Redis crashes. The early payment is delivered again and ten new ones
	// arrive, each retried every 50ms: every answer is a 500 and no
	// callback runs, until Redis is back.
	srv.stop()
	down.Store(true)
	late := payments("4200000301", "4200000302", "4200000303", "4200000304", "4200000305",
		"4200000306", "4200000307", "4200000308", "4200000309", "4200000310")
	all := append([]*bizcircletest.Message{early.Clone()}, late...)
	var failed atomic.Int64
	enough := make(chan struct{})
	retrying := &bizcircletest.Deliverer{
		Platform: wechat,
		Schedule: fastRetries(200, 50*time.Millisecond),
		OnAttempt: func(a bizcircletest.Attempt) {
			switch {
			case a.OK() && down.Load():
				t.Errorf("attempt %d answered %d while Redis was down, want 500", a.N, a.Status)
			case !a.OK() && a.Status != http.StatusInternalServerError:
				t.Errorf("attempt %d answered %d %s (%v), want 500 or 204", a.N, a.Status, a.Body, a.Err)
			case !a.OK() && failed.Add(1) == int64(2*len(all)):
				close(enough)
			}
		},
	}
	var wg sync.WaitGroup
	for i, m := range all {
		wg.Go(func() {
			attempts, err := retrying.DeliverURL(context.Background(), url, m)
			if err != nil {
				t.Errorf("payment %d: not acknowledged after %d attempts: %v", i, len(attempts), err)
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(20 * time.Second):
		t.Fatal("deliveries were not answered while Redis was down")
	}

	// Redis comes back on the same port: the retries are processed.
	down.Store(false)
	srv.start()
	wg.Wait()
	if n := failed.Load(); n < int64(2*len(all)) {
		t.Errorf("%d deliveries failed while Redis was down, want at least %d", n, 2*len(all))
	}
	check := func(when string) {
		t.Helper()
		for _, m := range all {
			id := transactionID(t, m)
			if n := l.count(id); n != 1 {
				t.Errorf("%s: the callback ran %d times for %s, want 1", when, n, id)
			}
		}
		if n := l.total(); n != len(all) {
			t.Errorf("%s: %d callback runs in all, want %d", when, n, len(all))
		}
	}
	check("after the restart")

	// Later duplicates of every payment are acknowledged without a run.
	for _, m := range all {
		if _, err := once.DeliverURL(context.Background(), url, m); err != nil {
			t.Errorf("duplicate of %s: %v", transactionID(t, m), err)
		}
	}
	check("after duplicates")
}

// transactionID returns the transaction ID of a payment notification.
func transactionID(t *testing.T, m *bizcircletest.Message) string {
	t.Helper()
	var e bizcircle.PaymentEvent
	if err := json.Unmarshal(m.Plaintext, &e); err != nil {
		t.Fatal(err)
	}
	return e.TransactionID
}

// TestRedisFaultDuringCallback pins down what a completion failure means:
// Redis dies while a callback runs, so the callback's success cannot be
// recorded; the delivery is answered 500 and, once the lease lapses, WeChat
// Pay's retry runs the callback a second time.
func TestRedisFaultDuringCallback(t *testing.T) {
	srv := startRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.addr})
	t.Cleanup(func() { c.Close() })
	wechat := bizcircletest.NewPlatform()
	const lease = 300 * time.Millisecond
	running, crashed := make(chan struct{}), make(chan struct{})
	var runs atomic.Int64
	h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(),
		bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			if runs.Add(1) == 1 {
				close(running)
				<-crashed
			}
			return nil
		}},
		bizcircle.WithDeduper(newDeduper(t, c, redisdedupe.WithLease(lease))),
		bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	url := hs.URL
	m := wechat.Payment(bizcircletest.SamplePayment())

	var attempts []bizcircletest.Attempt
	answered, delivered := make(chan struct{}), make(chan error, 1)
	go func() {
		d := &bizcircletest.Deliverer{
			Platform: wechat,
			Schedule: fastRetries(100, 50*time.Millisecond),
			OnAttempt: func(a bizcircletest.Attempt) {
				if a.N == 1 {
					close(answered)
				}
			},
		}
		var err error
		attempts, err = d.DeliverURL(context.Background(), url, m)
		delivered <- err
	}()
	<-running
	srv.stop()
	close(crashed) // the callback succeeds, but Redis is gone
	<-answered
	srv.start()
	if err := <-delivered; err != nil {
		t.Fatalf("not acknowledged: %v", err)
	}
	if attempts[0].Status != http.StatusInternalServerError {
		t.Errorf("the delivery whose mark failed was answered %d, want 500", attempts[0].Status)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("the callback ran %d times, want 2: once before the crash, once on the retry", n)
	}
	// The retry's success was recorded: later duplicates run nothing.
	once := &bizcircletest.Deliverer{Platform: wechat, Schedule: []time.Duration{}}
	if _, err := once.DeliverURL(context.Background(), url, m); err != nil || runs.Load() != 2 {
		t.Errorf("a later duplicate: %v, %d runs; want acknowledged, still 2 runs", err, runs.Load())
	}
}
