package queue_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/redis/go-redis/v9"
	"github.com/riverqueue/river/rivertype"
)

// TestSwitchToQueue: a mall switches from pgdedupe or Redis to queue mode.
// A payment processed before the switch (one ledger row) is retried and
// re-pushed by WeChat Pay after it: the queue endpoint with WithPriorDeduper
// answers 204, makes no job, and the ledger still has one row. A new payment
// goes through the queue as usual, and its key is done in the prior Deduper
// too, so a replica still in the old mode answers its retry 204 and runs
// nothing. A store that fails releases the key: the old mode then
// processes the event.
func TestSwitchToQueue(t *testing.T) {
	for _, tt := range []struct {
		name  string
		prior func(*env) bizcircle.Deduper
	}{
		{"from pgdedupe", pgPrior},
		{"from Redis", redisPrior},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			prior := tt.prior(e)
			before, err := bizcircle.New(e.platform.APIv3Key, e.platform.Verifier(), e.mall,
				bizcircle.WithDeduper(prior), bizcircle.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			old := bizcircletest.SamplePayment()
			msg := e.platform.Payment(old)
			if got := deliver(before, msg); got != http.StatusNoContent {
				t.Fatalf("before the switch: status %d, want 204", got)
			}
			e.wantOnce(t, paymentKey(old))

			q := e.newQueue(nil, queue.WithPriorDeduper(prior))
			e.start(q)
			// WeChat Pay's retry (its 204 was lost on the way) and a re-push
			// with a new notification ID.
			for _, m := range []*bizcircletest.Message{msg, e.platform.Payment(old)} {
				if got := deliver(q.Endpoint(), m); got != http.StatusNoContent {
					t.Fatalf("after the switch: status %d, want 204", got)
				}
			}
			if jobs := e.jobs(queue.KindNotification); len(jobs) != 0 {
				t.Errorf("%d jobs for an event processed before the switch, want 0", len(jobs))
			}
			if dups := e.outcomes.count(bizcircle.OutcomeDuplicate); dups != 2 {
				t.Errorf("%d duplicate outcomes, want 2", dups)
			}
			e.wantOnce(t, paymentKey(old))

			fresh := bizcircletest.SamplePayment()
			if got := deliver(q.Endpoint(), e.platform.Payment(fresh)); got != http.StatusNoContent {
				t.Fatalf("a new payment: status %d, want 204", got)
			}
			e.waitState(q, e.onlyJob(queue.KindNotification).ID, rivertype.JobStateCompleted)
			e.wantOnce(t, paymentKey(fresh))
			if got := deliver(before, e.platform.Payment(fresh)); got != http.StatusNoContent {
				t.Fatalf("the new payment's retry in the old mode: status %d, want 204", got)
			}
			e.wantOnce(t, paymentKey(fresh))

			closed := e.newQueue(nil, queue.WithPriorDeduper(prior))
			if err := closed.Close(); err != nil {
				t.Fatal(err)
			}
			lost := bizcircletest.SamplePayment()
			if got := deliver(closed.Endpoint(), e.platform.Payment(lost)); got != http.StatusInternalServerError {
				t.Fatalf("a store that fails: status %d, want 500", got)
			}
			if got := deliver(before, e.platform.Payment(lost)); got != http.StatusNoContent {
				t.Fatalf("its retry in the old mode: status %d, want 204", got)
			}
			e.wantOnce(t, paymentKey(lost))
		})
	}
}

// wantOnce fails t unless the callback of key ran once and wrote one ledger
// row.
func (e *env) wantOnce(t *testing.T, key string) {
	t.Helper()
	if runs, rows := e.mall.runCount(key), e.mall.ledger.rows(t, key); runs != 1 || rows != 1 {
		t.Errorf("%s: %d callback runs, %d ledger rows; want 1, 1", key, runs, rows)
	}
}

// pgPrior returns a pgdedupe Deduper on a table in the env's schema.
func pgPrior(e *env) bizcircle.Deduper {
	e.t.Helper()
	d, err := pgdedupe.New(e.pool, pgdedupe.WithTable(e.schema+".dedupe"), pgdedupe.WithCleanupInterval(0))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	if err := d.Migrate(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// redisPrior returns a redisdedupe Deduper on the test Redis, under a key
// prefix of its own, deleted when the test ends.
func redisPrior(e *env) bizcircle.Deduper {
	e.t.Helper()
	addr := testenv.Server(e.t, "BIZCIRCLE_REDIS_ADDR", "start a redis-server and set BIZCIRCLE_REDIS_ADDR=127.0.0.1:6379")
	c := redis.NewClient(&redis.Options{Addr: addr})
	e.t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		e.t.Fatalf("BIZCIRCLE_REDIS_ADDR=%s: %v", addr, err)
	}
	prefix := "bizcircletest:queue:" + unique("switch") + ":"
	e.t.Cleanup(func() {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	d, err := redisdedupe.New(c, redisdedupe.WithPrefix(prefix))
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}
