package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// errClosed is the store error after Close.
var errClosed = errors.New("queue: closed")

// A committer stores notifications by group commit: each of its goroutines
// takes every request queued while it was busy (up to maxBatch) and stores
// them with one statement, a batched insert that commits on its own, then
// answers each. Under light load a batch holds one request and adds no
// wait; under heavy load the batches grow, and the statements per
// notification fall.
type committer struct {
	pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx]
	reqs     chan *storeReq
	maxBatch int
	timeout  time.Duration
	stop     chan struct{}
	stopped  chan struct{} // closed once every goroutine has returned
	wg       sync.WaitGroup
	once     sync.Once
}

// A storeReq is one notification waiting for its commit.
type storeReq struct {
	args NotificationArgs
	done chan storeResult // buffered: the committer never blocks on it
}

type storeResult struct {
	duplicate bool
	err       error
}

func newCommitter(pool *pgxpool.Pool, rc *river.Client[pgx.Tx], maxBatch, committers int, timeout time.Duration) *committer {
	c := &committer{
		pool:     pool,
		river:    rc,
		reqs:     make(chan *storeReq, maxBatch*committers),
		maxBatch: maxBatch,
		timeout:  timeout,
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	for range committers {
		c.wg.Go(c.loop)
	}
	return c
}

// store queues args and waits for the commit that holds its job, for ctx
// and at most the timeout.
func (c *committer) store(ctx context.Context, args NotificationArgs) (duplicate bool, err error) {
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	r := &storeReq{args: args, done: make(chan storeResult, 1)}
	select {
	case <-c.stop:
		return false, errClosed
	default:
	}
	select {
	case c.reqs <- r:
	case <-c.stop:
		return false, errClosed
	case <-timer.C:
		return false, fmt.Errorf("queue: no committer free within %v", c.timeout)
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.duplicate, res.err
	case <-c.stopped:
		// Sent after the goroutines drained: nobody will store it.
		select {
		case res := <-r.done:
			return res.duplicate, res.err
		default:
			return false, errClosed
		}
	case <-timer.C:
		// The job may still commit: WeChat Pay's retry is then a duplicate.
		return false, fmt.Errorf("queue: not stored within %v", c.timeout)
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (c *committer) loop() {
	batch := make([]*storeReq, 0, c.maxBatch)
	for {
		select {
		case r := <-c.reqs:
			batch = append(batch[:0], r)
		case <-c.stop:
			c.drain()
			return
		}
	more:
		for len(batch) < c.maxBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		c.commit(batch)
		clear(batch) // let answered requests go
	}
}

// drain answers the requests left after Close.
func (c *committer) drain() {
	for {
		select {
		case r := <-c.reqs:
			r.done <- storeResult{err: errClosed}
		default:
			return
		}
	}
}

// commit stores batch with one statement and answers each request. Requests
// of one key share a job: the first is inserted (or found a duplicate), the
// others are duplicates. Keys are inserted in order, so that concurrent
// batches (here or in other replicas) lock them in one order and cannot
// deadlock.
func (c *committer) commit(batch []*storeReq) {
	slices.SortStableFunc(batch, func(a, b *storeReq) int { return cmp.Compare(a.args.Key, b.args.Key) })
	params := make([]river.InsertManyParams, 0, len(batch))
	for i, r := range batch {
		if i == 0 || r.args.Key != batch[i-1].args.Key {
			params = append(params, river.InsertManyParams{Args: r.args})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res, err := c.insert(ctx, params)
	if isDeadlock(err) && ctx.Err() == nil {
		res, err = c.insert(ctx, params)
	}
	j := -1
	for i, r := range batch {
		first := i == 0 || r.args.Key != batch[i-1].args.Key
		if first {
			j++
		}
		switch {
		case err != nil:
			r.done <- storeResult{err: err}
		case first:
			r.done <- storeResult{duplicate: res[j].UniqueSkippedAsDuplicate}
		default:
			r.done <- storeResult{duplicate: true}
		}
	}
}

// insert runs River's InsertManyTx outside a transaction: its one INSERT …
// ON CONFLICT statement is atomic, and commits before it answers.
func (c *committer) insert(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	return c.river.InsertManyTx(ctx, autocommit{conn.Conn()}, params)
}

// isDeadlock reports a deadlock or serialization failure, which a retry of
// the whole batch resolves.
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// close stops the goroutines; requests still queued are answered with
// errClosed.
func (c *committer) close() {
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		close(c.stopped)
	})
}
