package queue

import "github.com/jackc/pgx/v5"

// Autocommit is the endpoint's autocommitting pgx.Tx, for benchmarks that
// store the way it does.
func Autocommit(conn *pgx.Conn) pgx.Tx { return autocommit{conn} }
