package redisdedupe_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/dedupetest"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name   string
		legacy bool
	}{
		{"SET NX GET claim", false},
		{"script claim for Redis before 7.0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dedupetest.Run(t, harness(tc.legacy))
		})
	}
}

// harness builds Dedupers on the test Redis, one client each, like
// replicas in separate processes.
func harness(legacy bool) dedupetest.Harness {
	options := func(cfg dedupetest.Config) []redisdedupe.Option {
		return []redisdedupe.Option{
			redisdedupe.WithPrefix("bizcircletest:" + cfg.Namespace + ":"),
			redisdedupe.WithTTL(cfg.TTL),
			redisdedupe.WithLease(cfg.Lease),
		}
	}
	return dedupetest.Harness{
		New: func(t *testing.T, cfg dedupetest.Config) bizcircle.Deduper {
			c := newClient(t)
			t.Cleanup(func() { deleteKeys(c, "bizcircletest:"+cfg.Namespace+":") })
			d := newDeduper(t, c, options(cfg)...)
			if legacy {
				redisdedupe.ForceLegacyClaim(d)
			}
			return d
		},
		Shared: true,
		// A process that dies mid-callback: its Deduper claimed the key and
		// then lost its connection for good, so it neither renews nor
		// releases the claim.
		Crash: func(t *testing.T, cfg dedupetest.Config, _ bizcircle.Deduper, key string) {
			c := redis.NewClient(&redis.Options{Addr: redisAddr(t)})
			d := newDeduper(t, c, options(cfg)...)
			started, exited := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(exited)
				_, _ = d.Do(context.Background(), key, func(ctx context.Context) error {
					close(started)
					<-ctx.Done() // cancelled once the lease is lost
					return context.Cause(ctx)
				})
			}()
			select {
			case <-started:
			case <-exited:
				t.Fatal("the crashing holder did not claim the key")
			}
			c.Close()
			t.Cleanup(func() {
				select {
				case <-exited:
				case <-time.After(10 * cfg.Lease):
					t.Error("the crashed holder's callback was not cancelled after its lease was lost")
				}
			})
		},
	}
}

func TestRoundTrips(t *testing.T) {
	c := newClient(t)
	var n counter
	c.AddHook(&n)
	d := newDeduper(t, c, redisdedupe.WithPrefix(testPrefix(t, c)), redisdedupe.WithTTL(time.Minute))
	ctx := context.Background()
	// The first use of a script after a server start loads it: one more trip.
	_, _ = d.Do(ctx, "warm-up-ok", func(context.Context) error { return nil })
	_, _ = d.Do(ctx, "warm-up-fail", func(context.Context) error { return errors.New("fail") })

	held, release, exited := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		_, _ = d.Do(ctx, "in-flight", func(context.Context) error { close(held); <-release; return nil })
	}()
	<-held
	defer func() { close(release); <-exited }()

	for _, tc := range []struct {
		name  string
		key   string
		fnErr error
		want  int64
	}{
		{"a fresh notification: claim and complete", "fresh", nil, 2},
		{"a duplicate of a completed one: claim", "fresh", nil, 1},
		{"a duplicate of one in flight: claim", "in-flight", nil, 1},
		{"a failing callback: claim and release", "failing", errors.New("fail"), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.reset()
			_, _ = d.Do(ctx, tc.key, func(context.Context) error { return tc.fnErr })
			if got := n.trips.Load(); got != tc.want {
				t.Errorf("%d round trips %v, want %d", got, n.commands(), tc.want)
			}
		})
	}
}

func TestKeyLayout(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	key := "layout-" + strings.ToLower(t.Name()) + fmt.Sprint(time.Now().UnixNano())
	for _, tc := range []struct {
		name      string
		opts      []redisdedupe.Option
		rkey      string
		lease     time.Duration
		ttl       time.Duration
		tolerance time.Duration
	}{
		{"defaults", nil, redisdedupe.DefaultPrefix + key, 30 * time.Second, 25 * time.Hour, time.Second},
		{"options", []redisdedupe.Option{redisdedupe.WithPrefix("bizcircletest:layout:"),
			redisdedupe.WithLease(2 * time.Second), redisdedupe.WithTTL(time.Minute)},
			"bizcircletest:layout:" + key, 2 * time.Second, time.Minute, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { c.Del(ctx, tc.rkey) })
			d := newDeduper(t, c, tc.opts...)
			ran, err := d.Do(ctx, key, func(context.Context) error {
				v, err := c.Get(ctx, tc.rkey).Result()
				if err != nil || v == "" || strings.HasPrefix(v, "done") {
					t.Errorf("while fn runs, %s = %q, %v; want a token", tc.rkey, v, err)
				}
				if ttl := c.PTTL(ctx, tc.rkey).Val(); ttl > tc.lease || ttl < tc.lease-tc.tolerance {
					t.Errorf("while fn runs, the claim expires in %v, want the lease %v", ttl, tc.lease)
				}
				return nil
			})
			if !ran || err != nil {
				t.Fatalf("Do = (%v, %v), want (true, nil)", ran, err)
			}
			if v := c.Get(ctx, tc.rkey).Val(); !strings.HasPrefix(v, "done:") {
				t.Errorf("after success, %s = %q, want done:<token>", tc.rkey, v)
			}
			if ttl := c.PTTL(ctx, tc.rkey).Val(); ttl > tc.ttl || ttl < tc.ttl-tc.tolerance {
				t.Errorf("the completed key expires in %v, want the TTL %v", ttl, tc.ttl)
			}
		})
	}
}

func TestStaleHolder(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	ctx := context.Background()
	errFn := errors.New("callback failed")
	for _, tc := range []struct {
		name    string
		other   string // what the key holds when the stale holder finishes
		fnErr   error
		panics  bool
		wantErr error
	}{
		{"another delivery's claim is not completed", "OTHERTOKEN", nil, false, redisdedupe.ErrLeaseLost},
		{"another delivery's completion is kept", "done:OTHERTOKEN", nil, false, redisdedupe.ErrLeaseLost},
		{"another delivery's claim is not released on error", "OTHERTOKEN", errFn, false, errFn},
		{"another delivery's claim is not released on panic", "OTHERTOKEN", nil, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := nonWord.ReplaceAllString(tc.name, "_")
			d := newDeduper(t, c, redisdedupe.WithPrefix(prefix), redisdedupe.WithLease(10*time.Second))
			var ran bool
			var err error
			func() {
				defer func() {
					if r := recover(); (r != nil) != tc.panics {
						t.Errorf("recovered %v, want a panic: %v", r, tc.panics)
					}
				}()
				ran, err = d.Do(ctx, key, func(context.Context) error {
					// The lease lapsed and another delivery took the key.
					c.Set(ctx, prefix+key, tc.other, time.Minute)
					if tc.panics {
						panic("callback panicked")
					}
					return tc.fnErr
				})
			}()
			if !tc.panics && (!ran || !errors.Is(err, tc.wantErr)) {
				t.Errorf("Do = (%v, %v), want (true, %v)", ran, err, tc.wantErr)
			}
			if v := c.Get(ctx, prefix+key).Val(); v != tc.other {
				t.Errorf("the key holds %q, want the other delivery's %q", v, tc.other)
			}
		})
	}
}

func TestLapsedKeyIsCompleted(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	ctx := context.Background()
	d := newDeduper(t, c, redisdedupe.WithPrefix(prefix))
	ran, err := d.Do(ctx, "lapsed", func(context.Context) error {
		c.Del(ctx, prefix+"lapsed") // the lease lapsed and nobody claimed the key
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("Do = (%v, %v), want (true, nil)", ran, err)
	}
	if v := c.Get(ctx, prefix+"lapsed").Val(); !strings.HasPrefix(v, "done:") {
		t.Errorf("the key holds %q, want done:<token>", v)
	}
}

func TestLostLeaseCancelsCallback(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	ctx := context.Background()
	d := newDeduper(t, c, redisdedupe.WithPrefix(prefix), redisdedupe.WithLease(150*time.Millisecond))
	ran, err := d.Do(ctx, "lost", func(ctx context.Context) error {
		c.Set(ctx, prefix+"lost", "OTHERTOKEN", time.Minute)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(5 * time.Second):
			return errors.New("fn's context was not cancelled after its claim was lost")
		}
	})
	if !ran || !errors.Is(err, redisdedupe.ErrLeaseLost) {
		t.Errorf("Do = (%v, %v), want (true, ErrLeaseLost)", ran, err)
	}
	if v := c.Get(ctx, prefix+"lost").Val(); v != "OTHERTOKEN" {
		t.Errorf("the key holds %q, want the other delivery's claim", v)
	}
}

func TestRenewalTakesBackLostKey(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	ctx := context.Background()
	d := newDeduper(t, c, redisdedupe.WithPrefix(prefix), redisdedupe.WithLease(150*time.Millisecond))
	ran, err := d.Do(ctx, "flushed", func(fnCtx context.Context) error {
		token := c.Get(ctx, prefix+"flushed").Val()
		c.Del(ctx, prefix+"flushed") // the server lost the key, say in a restart
		eventually(t, 5*time.Second, "the renewal takes the key back", func() bool {
			return c.Get(ctx, prefix+"flushed").Val() == token
		})
		return context.Cause(fnCtx)
	})
	if !ran || err != nil {
		t.Fatalf("Do = (%v, %v), want (true, nil)", ran, err)
	}
}

func TestRedisDownAtClaim(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer c.Close()
	d := newDeduper(t, c)
	calls := 0
	ran, err := d.Do(context.Background(), "4200000001", func(context.Context) error { calls++; return nil })
	if ran || err == nil || errors.Is(err, bizcircle.ErrInFlight) || calls != 0 {
		t.Errorf("Do with Redis down = (%v, %v), fn ran %d times; want (false, a connection error), not run", ran, err, calls)
	}
}

func TestRedisDownAtCompletion(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	var f failing
	c.AddHook(&f)
	ctx := context.Background()
	const lease = 200 * time.Millisecond
	d := newDeduper(t, c, redisdedupe.WithPrefix(prefix), redisdedupe.WithLease(lease))
	calls := 0
	ran, err := d.Do(ctx, "4200000001", func(context.Context) error {
		calls++
		f.armed.Store(true) // Redis goes away while the callback runs
		return nil
	})
	f.armed.Store(false)
	if !ran || !errors.Is(err, errInjected) {
		t.Fatalf("Do = (%v, %v), want (true, the Redis error)", ran, err)
	}
	// As documented, the mark is missing: once the lease lapses, a retry
	// runs the callback again.
	eventually(t, 5*time.Second, "a retry runs the callback again", func() bool {
		ran, err := d.Do(ctx, "4200000001", func(context.Context) error { calls++; return nil })
		if err != nil && !errors.Is(err, bizcircle.ErrInFlight) {
			t.Fatalf("retry: %v", err)
		}
		return ran
	})
	if calls != 2 {
		t.Errorf("the callback ran %d times, want 2", calls)
	}
}

func TestOldRedis(t *testing.T) {
	c := newClient(t)
	c.AddHook(refuseSetNXGet{})
	var n counter
	c.AddHook(&n)
	d := newDeduper(t, c, redisdedupe.WithPrefix(testPrefix(t, c)), redisdedupe.WithTTL(time.Minute))
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	if ran, err := d.Do(ctx, "first", ok); !ran || err != nil {
		t.Fatalf("Do on a server that refuses SET NX GET = (%v, %v), want (true, nil)", ran, err)
	}
	// Once refused, the Deduper claims with a script: still one round trip
	// per claim.
	for _, tc := range []struct {
		key  string
		ran  bool
		want []string
	}{
		{"second", true, []string{"evalsha", "evalsha"}},
		{"second", false, []string{"evalsha"}},
	} {
		n.reset()
		if ran, err := d.Do(ctx, tc.key, ok); ran != tc.ran || err != nil {
			t.Errorf("Do(%q) = (%v, %v), want (%v, nil)", tc.key, ran, err, tc.ran)
		}
		if got := n.commands(); !slices.Equal(got, tc.want) {
			t.Errorf("Do(%q) sent %v, want %v", tc.key, got, tc.want)
		}
	}
}

// refuseSetNXGet is a go-redis hook that answers SET … NX … GET as Redis
// before 7.0 does.
type refuseSetNXGet struct{}

type syntaxError struct{}

func (syntaxError) Error() string { return "ERR syntax error" }
func (syntaxError) RedisError()   {}

func (refuseSetNXGet) DialHook(next redis.DialHook) redis.DialHook { return next }

func (refuseSetNXGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := strings.ToLower(fmt.Sprint(cmd.Args()...))
		if cmd.Name() == "set" && strings.Contains(args, "nx") && strings.Contains(args, "get") {
			cmd.SetErr(syntaxError{})
			return syntaxError{}
		}
		return next(ctx, cmd)
	}
}

func (refuseSetNXGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestFailedRenewalsCancelBeforeTheClaimLapses is issue 13's item 11 on a
// real Redis: renewals fail (a hook refuses scripts), and the callback's
// context must be cancelled while its claim still holds in Redis, not when
// it lapses. The exact timing, the margin before the claim can lapse, is
// checked on a fake clock by TestKeepAliveCancelsBeforeTheClaimCanLapse.
func TestFailedRenewalsCancelBeforeTheClaimLapses(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	var f failing
	c.AddHook(&f)
	const lease, margin = 1500 * time.Millisecond, 600 * time.Millisecond
	d := newDeduper(t, c, redisdedupe.WithPrefix(prefix), redisdedupe.WithLease(lease),
		redisdedupe.WithCancelMargin(margin))
	ctx := context.Background()
	var token, held string
	var left time.Duration
	ran, err := d.Do(ctx, "4200000001", func(fnCtx context.Context) error {
		f.armed.Store(true) // Redis refuses the renewals from now on
		defer f.armed.Store(false)
		select {
		case <-fnCtx.Done():
		case <-time.After(10 * lease):
			return errors.New("the callback's context was not cancelled")
		}
		token, _ = redisdedupe.FencingToken(fnCtx)
		held = c.Get(ctx, prefix+"4200000001").Val()
		left = c.PTTL(ctx, prefix+"4200000001").Val()
		return context.Cause(fnCtx)
	})
	if !ran || !errors.Is(err, redisdedupe.ErrLeaseLost) {
		t.Errorf("Do = (%v, %v), want (true, ErrLeaseLost)", ran, err)
	}
	t.Logf("cancelled %v before the claim would lapse in Redis (margin %v)", left, margin)
	// The margin is slack enough for a loaded machine; without it the
	// claim had lapsed already.
	if held != token || left <= 0 {
		t.Errorf("when the callback was cancelled, the key held %q for %v more; want the claim %q, for about the %v margin",
			held, left, token, margin)
	}
}

func TestFencingToken(t *testing.T) {
	c := newClient(t)
	prefix := testPrefix(t, c)
	d := newDeduper(t, c, redisdedupe.WithPrefix(prefix))
	ctx := context.Background()
	if token, ok := redisdedupe.FencingToken(ctx); ok || token != "" {
		t.Errorf("FencingToken(context.Background()) = (%q, %v), want (\"\", false)", token, ok)
	}
	// The first delivery fails and releases the key; the retry claims it
	// again.
	var tokens []string
	for i, fnErr := range []error{errors.New("points service down"), nil} {
		ran, err := d.Do(ctx, "4200000001", func(ctx context.Context) error {
			token, ok := redisdedupe.FencingToken(ctx)
			if !ok || token == "" {
				t.Errorf("delivery %d: FencingToken = (%q, %v), want the claim's token", i+1, token, ok)
			}
			if held := c.Get(ctx, prefix+"4200000001").Val(); held != token {
				t.Errorf("delivery %d: FencingToken = %q, but the claim in Redis is %q", i+1, token, held)
			}
			tokens = append(tokens, token)
			return fnErr
		})
		if !ran || !errors.Is(err, fnErr) {
			t.Fatalf("delivery %d: Do = (%v, %v), want (true, %v)", i+1, ran, err, fnErr)
		}
	}
	if tokens[0] == tokens[1] {
		t.Errorf("two claims of a released key had the same token %q, want different ones", tokens[0])
	}
}
