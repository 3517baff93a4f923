package redisdedupe_test

import (
	"context"
	"crypto/rand"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	// The fault test makes go-redis log every refused dial; the tests check
	// what those errors do.
	redis.SetLogger(quiet{})
	testenv.Main(m) // says in one line which tests skipped for want of Redis
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// redisAddr returns the address of the Redis the tests use. Without one
// the test is skipped, but under CI=true it fails: .ci/run starts a server.
func redisAddr(t testing.TB) string {
	t.Helper()
	return testenv.Server(t, "BIZCIRCLE_REDIS_ADDR", "start a redis-server "+
		"(redis-server --port 6390 --save '' --daemonize yes) and set BIZCIRCLE_REDIS_ADDR=127.0.0.1:6390 to run the Redis tests")
}

// newClient returns a client of the test Redis, closed when t ends, after
// checking that the server answers.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := redisAddr(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("BIZCIRCLE_REDIS_ADDR=%s: %v", addr, err)
	}
	return c
}

// testPrefix returns a key prefix unique to t, and deletes its keys when t
// ends.
func testPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	name := nonWord.ReplaceAllString(t.Name(), "_")
	prefix := "bizcircletest:" + name + ":" + strings.ToLower(rand.Text()[:8]) + ":"
	t.Cleanup(func() { deleteKeys(c, prefix) })
	return prefix
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// deleteKeys deletes every key that begins with prefix, which holds no glob
// characters.
func deleteKeys(c *redis.Client, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

// counter is a go-redis hook that counts round trips: one per command, one
// per pipeline.
type counter struct {
	trips atomic.Int64

	mu   sync.Mutex
	cmds []string
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.record(cmd.Name())
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.record("pipeline")
		return next(ctx, cmds)
	}
}

func (c *counter) record(name string) {
	c.trips.Add(1)
	c.mu.Lock()
	c.cmds = append(c.cmds, name)
	c.mu.Unlock()
}

// reset forgets what was counted.
func (c *counter) reset() {
	c.trips.Store(0)
	c.mu.Lock()
	c.cmds = nil
	c.mu.Unlock()
}

// commands returns the commands counted since the last reset.
func (c *counter) commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds...)
}

// failing is a go-redis hook that fails scripts once armed, as if Redis
// went away after the claim.
type failing struct{ armed atomic.Bool }

var errInjected = errors.New("injected: redis unreachable")

func (f *failing) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failing) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.armed.Load() && strings.HasPrefix(cmd.Name(), "eval") {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (f *failing) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// eventually polls cond until it holds, failing t after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// newDeduper is redisdedupe.New for tests: an error fails tb.
func newDeduper(tb testing.TB, c redis.UniversalClient, opts ...redisdedupe.Option) *redisdedupe.Deduper {
	tb.Helper()
	d, err := redisdedupe.New(c, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
