package bizcircle

import "time"

// An Outcome is what happened to one notification at one stage.
type Outcome int

// Outcomes reported to the observer set by [WithObserver]. A delivery is
// reported twice: once by the decoder (Verified or Rejected), then, if
// verified, once by the dispatcher (Processed, Duplicate, Ignored or Failed;
// Stored in queue mode). A stored notification's delivery, in a worker, is
// reported by the dispatcher, or as Rejected or Failed by
// [Dispatcher.ReportStored] when the worker refuses it.
const (
	// OutcomeVerified: the signature verified and the resource decrypted.
	OutcomeVerified Outcome = iota + 1
	// OutcomeRejected: the request failed verification or decryption (from
	// the decoder) or its plaintext is not the event (from the dispatcher);
	// in a worker, the stored notification no longer verifies or does not
	// belong to its job.
	OutcomeRejected
	// OutcomeProcessed: the callback ran and succeeded.
	OutcomeProcessed
	// OutcomeDuplicate: the event was already processed; no callback ran.
	OutcomeDuplicate
	// OutcomeIgnored: no callback handles this event type; acknowledged.
	OutcomeIgnored
	// OutcomeFailed: the callback or the deduper failed, or another
	// delivery holds the event; WeChat Pay will retry. In a worker, the
	// attempt failed (the callback, or the worker itself).
	OutcomeFailed
	// OutcomeStored: queue mode stored the event durably; its callback runs
	// later, in a worker, with retries. WeChat Pay was answered 204.
	OutcomeStored
)

var outcomeNames = [...]string{"", "verified", "rejected", "processed", "duplicate", "ignored", "failed", "stored"}

// String returns the outcome's lower-case name, e.g. "duplicate".
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// An Observation reports one outcome to the observer set by [WithObserver].
type Observation struct {
	Outcome Outcome
	// EventType and NotificationID are empty when the envelope was not read.
	EventType      string
	NotificationID string
	RequestID      string
	// Err is the reason for OutcomeRejected and OutcomeFailed, else nil.
	Err error
	// Duration is the time the stage took: verification and decryption for
	// Verified and Rejected, the deduper and callback for the others.
	Duration time.Duration
}
