package queue_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/riverqueue/river/rivertype"
)

// TestHooksCarryToTheWorker: what a hook's Carry returns on the receiving
// side (a trace context, for otelbizcircle's span link) reaches the
// worker's delivery in Delivery.Carried, beside WithMeta's Request-ID.
func TestHooksCarryToTheWorker(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var carried []map[string]string
	hook := bizcircle.Hook{
		Start: func(ctx context.Context, d bizcircle.Delivery) context.Context {
			mu.Lock()
			carried = append(carried, d.Carried)
			mu.Unlock()
			return ctx
		},
		Carry: func(context.Context) map[string]string { return map[string]string{"traceparent": "00-abc-def-01"} },
	}
	q := e.newQueue(nil, queue.WithBizcircle(bizcircle.WithHook(hook)))
	p := bizcircletest.SamplePayment()
	msg := e.platform.Payment(p)
	if got := deliver(q.Endpoint(), msg); got != http.StatusNoContent {
		t.Fatalf("status %d, want 204", got)
	}
	job := e.onlyJob(queue.KindNotification)
	e.start(q)
	e.waitState(q, job.ID, rivertype.JobStateCompleted)

	mu.Lock()
	defer mu.Unlock()
	if len(carried) != 2 || carried[0] != nil {
		t.Fatalf("deliveries carried %v, want the request's (nil) then the worker's", carried)
	}
	w := carried[1]
	if w["traceparent"] != "00-abc-def-01" || w["request_id"] != msg.Header.Get(bizcircle.HeaderRequestID) {
		t.Errorf("the worker's delivery carried %v, want the hook's traceparent and the request_id", w)
	}
	if runs := e.mall.runCount(paymentKey(p)); runs != 1 {
		t.Errorf("%d callback runs, want 1", runs)
	}
}
