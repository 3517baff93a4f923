package queue

import (
	"context"
	"errors"
	"strconv"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/riverqueue/river"
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

// Work sends the job's points sync inside the hooks of [WithSyncHook].
func (w *syncWorker) Work(ctx context.Context, job *river.Job[SyncPointsArgs]) error {
	hooks := w.hooks
	if len(hooks) == 0 {
		return w.send(ctx, job)
	}
	j := *jobOf(job.JobRow)
	for _, h := range hooks {
		if h.Start != nil {
			ctx = h.Start(ctx, j)
		}
	}
	err := w.send(ctx, job)
	result, cause := syncResult(job.JobRow, err)
	for i := len(hooks) - 1; i >= 0; i-- {
		if hooks[i].End != nil {
			hooks[i].End(ctx, result, cause)
		}
	}
	return err
}

// syncResult tells what comes of a sync attempt that returned err, and
// why: err without River's cancelling wrapper.
func syncResult(row *rivertype.JobRow, err error) (client.SyncResult, error) {
	var cancel *rivertype.JobCancelError
	switch {
	case err == nil:
		return client.SyncSent, nil
	case errors.As(err, &cancel):
		if cause := cancel.Unwrap(); cause != nil {
			return client.SyncRefused, cause
		}
		return client.SyncRefused, err
	case row.Attempt >= row.MaxAttempts:
		return client.SyncDiscarded, err
	}
	return client.SyncRetried, err
}
