package queue

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// ErrNoTx is the error of every call on the transaction [Tx] returns with ok
// false, for a ctx that does not come from a queue worker's callback: code that
// ignores ok gets this error, not a nil-pointer panic.
var ErrNoTx = errors.New("queue: no transaction: the context does not come from a queue worker's callback")

// noTx is the pgx.Tx that [Tx] returns when ctx holds none: every call
// fails with ErrNoTx, but LargeObjects (pgx gives no way to make one that
// fails) and Conn (nil).
type noTx struct{}

var _ pgx.Tx = noTx{}

func (noTx) Begin(context.Context) (pgx.Tx, error) { return nil, ErrNoTx }
func (noTx) Commit(context.Context) error          { return ErrNoTx }
func (noTx) Rollback(context.Context) error        { return ErrNoTx }

func (noTx) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, ErrNoTx
}

func (noTx) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults { return noBatch{} }
func (noTx) LargeObjects() pgx.LargeObjects                         { return pgx.LargeObjects{} }

func (noTx) Prepare(context.Context, string, string) (*pgconn.StatementDescription, error) {
	return nil, ErrNoTx
}

func (noTx) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, ErrNoTx
}

func (noTx) Query(context.Context, string, ...any) (pgx.Rows, error) { return noRows{}, ErrNoTx }
func (noTx) QueryRow(context.Context, string, ...any) pgx.Row        { return noRows{} }
func (noTx) Conn() *pgx.Conn                                         { return nil }

// noRows is a noTx's rows and row: none, and ErrNoTx.
type noRows struct{}

func (noRows) Close()                                       {}
func (noRows) Err() error                                   { return ErrNoTx }
func (noRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (noRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (noRows) Next() bool                                   { return false }
func (noRows) Scan(...any) error                            { return ErrNoTx }
func (noRows) Values() ([]any, error)                       { return nil, ErrNoTx }
func (noRows) RawValues() [][]byte                          { return nil }
func (noRows) Conn() *pgx.Conn                              { return nil }
func (noRows) TypeMap() *pgtype.Map                         { return nil }

// noBatch is a noTx's batch results: ErrNoTx for each.
type noBatch struct{}

func (noBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, ErrNoTx }
func (noBatch) Query() (pgx.Rows, error)         { return noRows{}, ErrNoTx }
func (noBatch) QueryRow() pgx.Row                { return noRows{} }
func (noBatch) Close() error                     { return ErrNoTx }
func (noBatch) Tx() pgx.Tx                       { return nil }
