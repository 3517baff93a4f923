package queue

import (
	"strconv"

	"github.com/go-bizcircle/bizcircle"
	"github.com/riverqueue/river/rivertype"
)

// riverSystem is the messaging system the hooks are told of: River is not
// one of OpenTelemetry's registered values, which allow a custom one.
const riverSystem = "river"

// jobOf describes a River job to the hooks.
func jobOf(row *rivertype.JobRow) *bizcircle.Job {
	return &bizcircle.Job{System: riverSystem, Queue: row.Queue, ID: strconv.FormatInt(row.ID, 10), Attempt: row.Attempt}
}

// A sentinel is one of the package's errors that telemetry sees: its
// ErrorType method gives its Go name for OpenTelemetry's error.type, as
// semconv.ErrorType and otelbizcircle.ErrorType read it.
type sentinel struct{ name, text string }

func (e *sentinel) Error() string { return e.text }

// ErrorType returns the error's Go name, such as "ErrUnverified".
func (e *sentinel) ErrorType() string { return e.name }
