package pgdedupe

import (
	"context"
	"fmt"
	"sync"
	"time"
)

type cleanupConfig struct {
	batch   int
	onError func(error)
}

// DeleteExpired deletes the rows whose TTL has passed and returns how many it
// deleted. It works in batches (see [WithCleanupBatch]), each its own short
// statement that skips rows locked by a delivery, so it never waits for
// deliveries and they wait at most one batch for it. It stops early, with
// ctx's error, when ctx ends. Several replicas may run it at once.
func (d *Deduper) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := d.pool.Exec(ctx, d.sql.deleteExpired, d.now(), d.cleanup.batch)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, fmt.Errorf("pgdedupe: delete expired: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(d.cleanup.batch) {
			return total, nil
		}
	}
}

// cleanupLoop runs DeleteExpired on a ticker until stopped.
type cleanupLoop struct {
	ctx    context.Context // ends when the loop is stopped
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has returned
	once   sync.Once
}

func startCleanup(d *Deduper, interval time.Duration) *cleanupLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &cleanupLoop{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go l.run(d, interval)
	return l
}

func (l *cleanupLoop) run(d *Deduper, interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			_, err := d.DeleteExpired(l.ctx)
			if err != nil && l.ctx.Err() == nil && d.cleanup.onError != nil {
				d.cleanup.onError(err)
			}
		}
	}
}

// Close stops the background cleanup, cancelling a run in progress, and waits
// for its goroutine to return. It does not close the pool, and Do keeps
// working after it. Close is safe to call more than once and always returns
// nil.
func (d *Deduper) Close() error {
	if d.loop != nil {
		d.loop.once.Do(d.loop.cancel)
		<-d.loop.done
	}
	return nil
}
