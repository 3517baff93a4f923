package bizcircle

import (
	"context"
	"log/slog"
	"time"
)

// The log records of stored notifications a worker refuses are sampled
// harder than a request's: whoever can write the store can write many rows,
// and the first record with a count of the rest is as good an alarm.
const (
	storedLogBurst    = 1
	storedLogInterval = time.Minute
)

type storedKey struct{}

// storedDelivery is what StartStored keeps in the delivery's ctx for
// ReportStored.
type storedDelivery struct {
	start time.Time
	job   *Job
}

// StartStored starts the delivery of a stored notification before its
// worker verifies it again, so that all the worker does with the ctx it
// returns is one delivery to the hooks ([WithHook]): [Decoder.DecodeStored],
// [Dispatcher.ReportStored] for what it refuses, and [Dispatcher.Dispatch].
// dl gives the hooks the signature headers the notification was stored
// with, what [Dispatcher.Carry] returned when it was received, and the job
// processing it. Call end, never nil, when the worker is done with the
// notification. Within a delivery already (ctx is one's), it starts none.
// Queue mode's worker uses it.
func (d *Dispatcher) StartStored(ctx context.Context, dl Delivery) (_ context.Context, end func()) {
	ctx = context.WithValue(ctx, storedKey{}, &storedDelivery{start: time.Now(), job: dl.Job})
	ctx, end = d.hooks.start(ctx, dl)
	if end == nil {
		end = func() {}
	}
	return ctx, end
}

// ReportStored reports a stored notification that its worker settles
// without dispatching it. out is [OutcomeRejected] for one that no longer
// verifies (n is nil; err wraps [Decoder.DecodeStored]'s error) or does not
// belong to its job: a row someone wrote into the store is a security
// event. out is [OutcomeFailed] for one the worker cannot process: no
// handler takes its event type any more, it cannot be keyed, the store
// failed. err says why; a nil err reports nothing.
//
// The observer ([WithObserver]) and the hooks' Observe get it, the hooks
// with ctx, the delivery's from [Dispatcher.StartStored]: its Duration is
// the time since StartStored. The log gets a warning for a rejection and an
// error for a failure, at most one a minute of each, the next one counting
// those left out ("suppressed"), as does a summary record 10 seconds after
// the first one left out.
func (d *Dispatcher) ReportStored(ctx context.Context, n *Notification, out Outcome, err error) {
	if err == nil {
		return
	}
	o := Observation{Outcome: out, Err: err}
	s, _ := ctx.Value(storedKey{}).(*storedDelivery)
	if s != nil {
		o.Duration = time.Since(s.start)
	}
	if n != nil {
		o.EventType, o.NotificationID, o.RequestID = n.EventType, n.ID, n.RequestID
	}
	if d.observer != nil {
		d.observer(o)
	}
	d.hooks.observe(ctx, o)

	sample, level, msg := d.storedFailures, slog.LevelError, "bizcircle: stored notification failed"
	if out == OutcomeRejected {
		sample, level, msg = d.storedRejects, slog.LevelWarn, "bizcircle: stored notification rejected"
	}
	attrs := make([]slog.Attr, 0, 5)
	if n != nil {
		attrs = append(attrs, slog.String("notification_id", n.ID), slog.String("event_type", n.EventType))
	}
	if s != nil && s.job != nil {
		attrs = append(attrs, slog.String("job_id", s.job.ID), slog.Int("attempt", s.job.Attempt))
	}
	sample.log(ctx, level, msg, append(attrs, slog.String("error", err.Error()))...)
}
