package pgdedupe

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// ErrNoTx is the error of every call on the transaction [Tx] returns with ok
// false, for a ctx that does not come from a pgdedupe callback: code that
// ignores ok gets this error, not a nil-pointer panic.
var ErrNoTx = errors.New("pgdedupe: no transaction: the context does not come from a pgdedupe callback")

// FailingTx returns a pgx.Tx whose every call fails with err, but
// LargeObjects (pgx gives no way to make one that fails) and Conn (nil):
// what [Tx] returns outside a callback, so that code ignoring ok gets a named
// error rather than a nil-pointer panic. Package queue's Tx returns one too.
func FailingTx(err error) pgx.Tx { return noTx{err} }

type noTx struct{ err error }

func (t noTx) Begin(context.Context) (pgx.Tx, error) { return nil, t.err }
func (t noTx) Commit(context.Context) error          { return t.err }
func (t noTx) Rollback(context.Context) error        { return t.err }

func (t noTx) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, t.err
}

func (t noTx) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults { return noBatch{t.err} }
func (t noTx) LargeObjects() pgx.LargeObjects                         { return pgx.LargeObjects{} }

func (t noTx) Prepare(context.Context, string, string) (*pgconn.StatementDescription, error) {
	return nil, t.err
}

func (t noTx) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, t.err
}

func (t noTx) Query(context.Context, string, ...any) (pgx.Rows, error) { return noRows{t.err}, t.err }
func (t noTx) QueryRow(context.Context, string, ...any) pgx.Row        { return noRows{t.err} }
func (t noTx) Conn() *pgx.Conn                                         { return nil }

// noRows is a noTx's rows and row: none, and its error.
type noRows struct{ err error }

func (r noRows) Close()                                       {}
func (r noRows) Err() error                                   { return r.err }
func (r noRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r noRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r noRows) Next() bool                                   { return false }
func (r noRows) Scan(...any) error                            { return r.err }
func (r noRows) Values() ([]any, error)                       { return nil, r.err }
func (r noRows) RawValues() [][]byte                          { return nil }
func (r noRows) Conn() *pgx.Conn                              { return nil }
func (r noRows) TypeMap() *pgtype.Map                         { return nil }

// noBatch is a noTx's batch results: its error for each.
type noBatch struct{ err error }

func (b noBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b noBatch) Query() (pgx.Rows, error)         { return noRows{b.err}, b.err }
func (b noBatch) QueryRow() pgx.Row                { return noRows{b.err} }
func (b noBatch) Close() error                     { return b.err }
func (b noBatch) Tx() pgx.Tx                       { return nil }
