package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/go-bizcircle/bizcircle"
)

// ErrStore is wrapped by the endpoint's error when a notification could not
// be stored (the database is down or slower than [WithInsertTimeout]): it is
// answered 500 and WeChat Pay retries.
var ErrStore = errors.New("queue: storing the notification failed")

func (q *Queue) serveHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := bizcircle.NotificationFromContext(r.Context())
	_, err := q.dispatcher.DispatchWith(r.Context(), n, func(ctx context.Context, key string, _ func(context.Context) error) (bizcircle.Outcome, error) {
		if q.opts.prior != nil {
			return q.storeThroughPrior(ctx, n, key)
		}
		return q.store(ctx, n, key)
	})
	bizcircle.WriteAnswer(w, err)
}

// storeThroughPrior stores n's job inside the prior Deduper's Do (see
// [WithPriorDeduper]): a key it has done is a duplicate and stores nothing;
// a failed store releases the key.
func (q *Queue) storeThroughPrior(ctx context.Context, n *bizcircle.Notification, key string) (bizcircle.Outcome, error) {
	var out bizcircle.Outcome
	var storeErr error
	ran, err := q.opts.prior.Do(ctx, key, func(ctx context.Context) error {
		out, storeErr = q.store(ctx, n, key)
		return storeErr
	})
	switch {
	case storeErr != nil:
		return bizcircle.OutcomeFailed, storeErr
	case err == nil && !ran:
		return bizcircle.OutcomeDuplicate, nil // the previous mode did it
	case err == nil:
		return out, nil
	case errors.Is(err, bizcircle.ErrInFlight):
		return bizcircle.OutcomeFailed, err
	default: // before the store, or after it (then the retry is a duplicate)
		return bizcircle.OutcomeFailed, fmt.Errorf("%w: %w", bizcircle.ErrDeduper, err)
	}
}

// store inserts n's job by group commit, bounded by the insert timeout.
func (q *Queue) store(ctx context.Context, n *bizcircle.Notification, key string) (bizcircle.Outcome, error) {
	args := NotificationArgs{
		Key:            key,
		EventType:      n.EventType,
		NotificationID: n.ID,
		Signed:         n.Signed,
	}
	// The hooks' carried values (a trace context, for the worker's span to
	// link to this one), then WithMeta's, which win on a clash.
	args.Meta = q.dispatcher.Carry(ctx)
	if q.opts.meta != nil {
		if m := q.opts.meta(ctx, n); len(m) > 0 {
			if args.Meta == nil {
				args.Meta = make(map[string]string, len(m))
			}
			maps.Copy(args.Meta, m)
		}
	}
	duplicate, err := q.committer.store(ctx, args)
	if err != nil {
		return bizcircle.OutcomeFailed, fmt.Errorf("%w: %w", ErrStore, err)
	}
	if duplicate {
		return bizcircle.OutcomeDuplicate, nil
	}
	return bizcircle.OutcomeStored, nil
}
