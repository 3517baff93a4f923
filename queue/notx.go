package queue

import (
	"errors"

	"github.com/go-bizcircle/bizcircle/pgdedupe"
)

// ErrNoTx is the error of every call on the transaction [Tx] returns with ok
// false, for a ctx that does not come from a queue worker's callback: code that
// ignores ok gets this error, not a nil-pointer panic.
var ErrNoTx = errors.New("queue: no transaction: the context does not come from a queue worker's callback")

// noTx is what [Tx] returns outside a worker's callback.
var noTx = pgdedupe.FailingTx(ErrNoTx)
