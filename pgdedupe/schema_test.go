package pgdedupe_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/jackc/pgx/v5"
)

func TestMigrate(t *testing.T) {
	pool := newPool(t, unique("migrate"), 0)
	ctx := context.Background()

	t.Run("concurrent and repeated", func(t *testing.T) {
		table := newTable(t, pool)
		d, err := pgdedupe.New(pool, pgdedupe.WithTable(table), pgdedupe.WithCleanupInterval(0))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = d.Migrate(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate %d: %v", i, err)
			}
		}
		if err := d.Migrate(ctx); err != nil {
			t.Errorf("Migrate again: %v", err)
		}
		var indexes int
		err = pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, table).Scan(&indexes)
		if err != nil || indexes != 2 {
			t.Errorf("%d indexes (%v), want the primary key and the expiry index", indexes, err)
		}
	})

	t.Run("long table names", func(t *testing.T) {
		// PostgreSQL truncates identifiers to 63 bytes: a naive index name
		// for a 63-byte table would be the table's own name, and one for
		// a 48-byte table would be 63 bytes long.
		long := unique("long") + "_"
		long += strings.Repeat("x", 63-len(long))
		for _, table := range []string{long, long[:62], long[:48]} {
			t.Cleanup(func() { dropTable(t, pool, table) })
			newDeduper(t, pool, table)
			var indexes int
			err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, table).Scan(&indexes)
			if err != nil || indexes != 2 {
				t.Errorf("%s: %d indexes (%v), want the primary key and the expiry index", table, indexes, err)
			}
		}
	})

	t.Run("schema-qualified, case-sensitive table", func(t *testing.T) {
		schema := unique("App")
		if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
				t.Error(err)
			}
		})
		d := newDeduper(t, pool, schema+".Dedupe")
		if !strings.Contains(d.Schema(), `"`+schema+`"."Dedupe"`) {
			t.Errorf("Schema() does not name the table:\n%s", d.Schema())
		}
		if ran, err := d.Do(ctx, "k", func(context.Context) error { return nil }); !ran || err != nil {
			t.Errorf("Do = (%v, %v), want (true, nil)", ran, err)
		}
		var n int
		err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "Dedupe"}.Sanitize()).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("%d rows (%v) in the schema's table, want 1", n, err)
		}
	})
}
