package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle"
	mallapi "github.com/go-bizcircle/bizcircle/client"
)

// errPointsUnavailable is the demo mall's simulated outage.
var errPointsUnavailable = errors.New("points service unavailable")

// mall is the demo's business logic: a points ledger awarding one point per
// yuan paid and taking them back on refund. It implements
// bizcircle.Callbacks. Each callback describes what it did with did, which
// the demo prints beside the delivery that ran it; add steps (such as the
// points sync call to WeChat Pay) to OnPayment and OnRefund the same way.
type mall struct {
	mu       sync.Mutex
	points   map[string]int64 // openid → balance
	failures map[string]int   // transaction_id → payments to fail before succeeding
	actions  []string         // what callbacks did since the last takeActions
	api      *mallapi.Client  // syncs awarded points to WeChat Pay, if set
}

func newMall() *mall {
	return &mall{points: map[string]int64{}, failures: map[string]int{}}
}

// pointsFor converts an amount in fen to points: one per whole yuan.
func pointsFor(fen int64) int64 { return fen / 100 }

func (m *mall) OnPayment(ctx context.Context, e *bizcircle.PaymentEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures[e.TransactionID] > 0 {
		m.failures[e.TransactionID]--
		m.did("could not award %d points: %v", pointsFor(e.Amount), errPointsUnavailable)
		return errPointsUnavailable
	}
	n := pointsFor(e.Amount)
	m.points[e.OpenID] += n
	synced := ""
	if m.api != nil {
		// WeChat Pay sends refunds only for payments whose points were synced.
		req := mallapi.NewSyncPointsRequest(e, n, time.Now())
		req.TotalPoints = mallapi.Int64(m.points[e.OpenID])
		if err := m.api.SyncPoints(ctx, req); err != nil {
			m.points[e.OpenID] -= n // undone: WeChat Pay retries the notification
			m.did("could not sync %d points: %v", n, err)
			return err
		}
		synced = ", synced to WeChat Pay"
	}
	m.did("awarded %d points to %s (balance %d)%s", n, short(e.OpenID), m.points[e.OpenID], synced)
	return nil
}

func (m *mall) OnRefund(ctx context.Context, e *bizcircle.RefundEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := pointsFor(e.RefundAmount)
	m.points[e.OpenID] -= n
	m.did("took back %d points from %s (balance %d)", n, short(e.OpenID), m.points[e.OpenID])
	return nil
}

// failNext makes the next n payments of transactionID fail.
func (m *mall) failNext(transactionID string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures[transactionID] = n
}

// did records an action; m.mu is held.
func (m *mall) did(format string, args ...any) {
	m.actions = append(m.actions, fmt.Sprintf(format, args...))
}

// takeActions returns and forgets the actions recorded so far.
func (m *mall) takeActions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.actions
	m.actions = nil
	return a
}

// short abbreviates an OpenID for display.
func short(openID string) string {
	if len(openID) <= 8 {
		return openID
	}
	return openID[:8] + "…"
}
