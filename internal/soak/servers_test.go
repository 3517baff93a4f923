package soak_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/go-bizcircle/bizcircle/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

func TestSoakPostgreSQL(t *testing.T) {
	url := testenv.Server(t, "BIZCIRCLE_PG_URL", "start PostgreSQL to run this soak")
	ctx := context.Background()
	table := fmt.Sprintf("soak_%d", time.Now().UnixNano())
	run(t, traffic(func(clock func() time.Time) bizcircle.Deduper {
		// Each replica has its own pool, as separate processes would.
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		d, err := pgdedupe.New(pool, pgdedupe.WithTable(table), pgdedupe.WithClock(clock), pgdedupe.WithCleanupInterval(0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}, 2))
	t.Cleanup(func() {
		pool, err := pgxpool.New(ctx, url)
		if err == nil {
			pool.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			pool.Close()
		}
	})
}

func TestSoakRedis(t *testing.T) {
	addr := testenv.Server(t, "BIZCIRCLE_REDIS_ADDR", "start a redis-server to run this soak")
	prefix := fmt.Sprintf("soak:%d:", time.Now().UnixNano())
	// Redis expires keys on its own clock, not the simulated one: the
	// simulated day fits well inside the real 25-hour TTL.
	run(t, traffic(func(func() time.Time) bizcircle.Deduper {
		// Each replica has its own client, as separate processes would.
		client := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { client.Close() })
		d, err := redisdedupe.New(client, redisdedupe.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, 2))
}
