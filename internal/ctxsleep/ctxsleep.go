// Package ctxsleep sleeps for a duration or until a context ends.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done, whichever comes first; it returns
// ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
