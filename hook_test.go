package bizcircle_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/google/go-cmp/cmp"
)

type traceKey struct{}

// traceHook records what a tracer would see, checking that every call
// after Start gets the ctx Start returned.
type traceHook struct {
	mu     sync.Mutex
	events []string
	next   int
}

func (h *traceHook) add(ctx context.Context, event string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id, ok := ctx.Value(traceKey{}).(int); ok {
		event += "@" + string(rune('0'+id))
	}
	h.events = append(h.events, event)
}

func (h *traceHook) hook() bizcircle.Hook {
	return bizcircle.Hook{
		Start: func(ctx context.Context, d bizcircle.Delivery) context.Context {
			h.mu.Lock()
			h.next++
			id := h.next
			h.mu.Unlock()
			ctx = context.WithValue(ctx, traceKey{}, id)
			event := "start"
			if d.Carried != nil {
				event += " carrying " + d.Carried["span"]
			}
			if d.Job != nil {
				event += fmt.Sprintf(" job %s %s/%s #%d", d.Job.System, d.Job.Queue, d.Job.ID, d.Job.Attempt)
			}
			h.add(ctx, event)
			return ctx
		},
		Observe: func(ctx context.Context, o bizcircle.Observation) { h.add(ctx, o.Outcome.String()) },
		Callback: func(ctx context.Context, n *bizcircle.Notification, run func(context.Context) error) error {
			h.add(ctx, "callback "+n.EventType)
			err := run(ctx)
			if errors.Is(err, bizcircle.ErrCallbackPanic) {
				h.add(ctx, "panic")
			}
			return err
		},
		End:   func(ctx context.Context) { h.add(ctx, "end") },
		Carry: func(ctx context.Context) map[string]string { return map[string]string{"span": "s1"} },
	}
}

func TestHookSeesEachDelivery(t *testing.T) {
	h := &traceHook{}
	var inCallback any
	cb := bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, _ *bizcircle.PaymentEvent) error {
			inCallback = ctx.Value(traceKey{})
			return nil
		},
		Refund: func(context.Context, *bizcircle.RefundEvent) error { panic("bug") },
	}
	endpoint := newEndpoint(t, platform, cb, bizcircle.WithHook(h.hook()), bizcircle.WithLogger(discardLogger))
	pay := platform.Payment(bizcircletest.SamplePayment())
	for _, tc := range []struct {
		r    *http.Request
		want int
	}{
		{pay.Request("/notify"), 204},
		{pay.Request("/notify"), 204},
		{platform.Refund(bizcircletest.SampleRefund(bizcircletest.SamplePayment())).Request("/notify"), 500},
		{func() *http.Request { r := pay.Request("/notify"); r.Header.Del(bizcircle.HeaderNonce); return r }(), 401},
	} {
		if w := serve(endpoint, tc.r); w.Code != tc.want {
			t.Fatalf("status %d, want %d", w.Code, tc.want)
		}
	}
	want := []string{
		"start@1", "verified@1", "callback MALL_TRANSACTION.SUCCESS@1", "processed@1", "end@1",
		"start@2", "verified@2", "duplicate@2", "end@2",
		"start@3", "verified@3", "callback MALL_REFUND.SUCCESS@3", "panic@3", "failed@3", "end@3",
		"start@4", "rejected@4", "end@4",
	}
	if diff := cmp.Diff(want, h.events); diff != "" {
		t.Errorf("hook events (-want +got):\n%s", diff)
	}
	if inCallback != 1 {
		t.Errorf("callback ctx carries %v, want the delivery's (1)", inCallback)
	}
}

func TestHookAroundDecodeDispatchAndStoredDeliveries(t *testing.T) {
	h := &traceHook{}
	opts := []bizcircle.Option{bizcircle.WithHook(h.hook()), bizcircle.WithClock(fixedClock)}
	dec, err := bizcircle.NewDecoder(platform.APIv3Key, platform.Verifier(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	disp := bizcircle.NewDispatcher(bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}, opts...)
	m := platform.Payment(bizcircletest.SamplePayment())
	ctx := context.Background()
	n, err := dec.Decode(ctx, m.Header, m.Body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := disp.Dispatch(ctx, n); err != nil {
		t.Fatal(err)
	}
	sctx, end := disp.StartStored(ctx, bizcircle.Delivery{Header: n.Signed.Header(), Carried: disp.Carry(ctx)})
	_, err = disp.Dispatch(sctx, n)
	end()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"start@1", "verified@1", "end@1",
		"start@2", "callback MALL_TRANSACTION.SUCCESS@2", "processed@2", "end@2",
		"start carrying s1@3", "duplicate@3", "end@3",
	}
	if diff := cmp.Diff(want, h.events); diff != "" {
		t.Errorf("hook events (-want +got):\n%s", diff)
	}
}
