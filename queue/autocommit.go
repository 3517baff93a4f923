package queue

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// autocommit is a pgx.Tx whose statements each commit on their own, for
// River's InsertManyTx. A group commit's batch is one INSERT … ON CONFLICT
// statement, which PostgreSQL runs atomically: wrapping it in BEGIN and
// COMMIT would add two round trips and nothing else. Begin starts a real
// transaction, so code that nests one still gets it.
type autocommit struct{ conn *pgx.Conn }

var _ pgx.Tx = autocommit{}

func (a autocommit) Begin(ctx context.Context) (pgx.Tx, error) { return a.conn.Begin(ctx) }

// Commit and Rollback have nothing to end: each statement has committed.
func (autocommit) Commit(context.Context) error   { return nil }
func (autocommit) Rollback(context.Context) error { return nil }

func (a autocommit) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return a.conn.CopyFrom(ctx, table, columns, src)
}

func (a autocommit) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return a.conn.SendBatch(ctx, b)
}

func (a autocommit) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (a autocommit) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return a.conn.Prepare(ctx, name, sql)
}

func (a autocommit) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return a.conn.Exec(ctx, sql, args...)
}

func (a autocommit) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return a.conn.Query(ctx, sql, args...)
}

func (a autocommit) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return a.conn.QueryRow(ctx, sql, args...)
}

func (a autocommit) Conn() *pgx.Conn { return a.conn }
