package otelbizcircle_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestSpanPerDelivery(t *testing.T) {
	ok := func(context.Context, *bizcircle.PaymentEvent) error { return nil }
	for _, tc := range []struct {
		name     string
		payment  func(context.Context, *bizcircle.PaymentEvent) error
		opts     []bizcircle.Option
		send     func(m *bizcircletest.Message) []*bizcircletest.Message // the last one is checked
		status   int
		verified bool
		spanName string
		attrs    map[string]string // besides the IDs
		code     codes.Code
		desc     string
	}{
		{
			name:     "a processed payment has its event type, IDs and outcome",
			payment:  ok,
			send:     func(m *bizcircletest.Message) []*bizcircletest.Message { return []*bizcircletest.Message{m} },
			status:   204,
			verified: true,
			spanName: "WeChatPay MALL_TRANSACTION.SUCCESS",
			attrs:    map[string]string{"bizcircle.outcome": "processed", "bizcircle.dedupe": "new"},
		},
		{
			name:    "a duplicate is what the deduper said",
			payment: ok,
			send: func(m *bizcircletest.Message) []*bizcircletest.Message {
				return []*bizcircletest.Message{m, platform.Resign(m)}
			},
			status:   204,
			verified: true,
			spanName: "WeChatPay MALL_TRANSACTION.SUCCESS",
			attrs:    map[string]string{"bizcircle.outcome": "duplicate", "bizcircle.dedupe": "duplicate"},
		},
		{
			name:     "a bad signature is rejected, unnamed, its status unset as a 4xx server span's",
			payment:  ok,
			send:     func(m *bizcircletest.Message) []*bizcircletest.Message { return []*bizcircletest.Message{forged(m)} },
			status:   401,
			spanName: "WeChatPay notification",
			attrs:    map[string]string{"bizcircle.outcome": "rejected", "error.type": "ErrSignature"},
		},
		{
			name:    "an event whose plaintext is not its JSON is rejected with a 400, its status unset",
			payment: ok,
			send: func(*bizcircletest.Message) []*bizcircletest.Message {
				return []*bizcircletest.Message{platform.Event(bizcircle.EventPayment, []byte(`{"transaction_id":`))}
			},
			status:   400,
			verified: true,
			spanName: "WeChatPay MALL_TRANSACTION.SUCCESS",
			attrs:    map[string]string{"bizcircle.outcome": "rejected", "error.type": "ErrPlaintext"},
		},
		{
			name:     "a failing callback (500) fails with an error status but not the error's text",
			payment:  func(context.Context, *bizcircle.PaymentEvent) error { return errors.New("points service down") },
			send:     func(m *bizcircletest.Message) []*bizcircletest.Message { return []*bizcircletest.Message{m} },
			status:   500,
			verified: true,
			spanName: "WeChatPay MALL_TRANSACTION.SUCCESS",
			attrs:    map[string]string{"bizcircle.outcome": "failed", "bizcircle.dedupe": "new", "error.type": "ErrCallback"},
			code:     codes.Error,
			desc:     bizcircle.ErrCallback.Error(),
		},
		{
			name:     "a panicking callback fails with its own kind",
			payment:  func(context.Context, *bizcircle.PaymentEvent) error { panic("bug") },
			send:     func(m *bizcircletest.Message) []*bizcircletest.Message { return []*bizcircletest.Message{m} },
			status:   500,
			verified: true,
			spanName: "WeChatPay MALL_TRANSACTION.SUCCESS",
			attrs:    map[string]string{"bizcircle.outcome": "failed", "bizcircle.dedupe": "new", "error.type": "ErrCallbackPanic"},
			code:     codes.Error,
			desc:     bizcircle.ErrCallbackPanic.Error(),
		},
		{
			name:     "a failing deduper is the deduper's error",
			payment:  ok,
			opts:     []bizcircle.Option{bizcircle.WithDeduper(failingDeduper{})},
			send:     func(m *bizcircletest.Message) []*bizcircletest.Message { return []*bizcircletest.Message{m} },
			status:   500,
			verified: true,
			spanName: "WeChatPay MALL_TRANSACTION.SUCCESS",
			attrs:    map[string]string{"bizcircle.outcome": "failed", "bizcircle.dedupe": "error", "error.type": "ErrDeduper"},
			code:     codes.Error,
			desc:     bizcircle.ErrDeduper.Error(),
		},
		{
			name:    "an ignored event type never reaches the deduper",
			payment: ok,
			send: func(*bizcircletest.Message) []*bizcircletest.Message {
				return []*bizcircletest.Message{platform.Event("COUPON.USE", []byte(`{}`))}
			},
			status:   204,
			verified: true,
			spanName: "WeChatPay COUPON.USE",
			attrs:    map[string]string{"bizcircle.outcome": "ignored"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			h := tel.endpoint(t, bizcircle.CallbackFuncs{Payment: tc.payment}, tc.opts...)
			msgs := tc.send(platform.Payment(payment()))
			for i, m := range msgs {
				if got := serve(h, m.Request("/notify")); i == len(msgs)-1 && got != tc.status {
					t.Fatalf("status %d, want %d", got, tc.status)
				}
			}
			if n := len(tel.spans.Ended()); n != len(msgs) {
				t.Fatalf("%d spans for %d deliveries, want one each", n, len(msgs))
			}
			last := msgs[len(msgs)-1]
			span := tel.lastSpan(t)
			want := map[string]string{"bizcircle.request_id": last.Header.Get(bizcircle.HeaderRequestID)}
			if tc.verified {
				want["bizcircle.event_type"] = last.EventType
				want["bizcircle.notification_id"] = last.ID
			}
			for k, v := range tc.attrs {
				want[k] = v
			}
			if diff := cmp.Diff(want, attrMap(span.Attributes())); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			if span.Name() != tc.spanName {
				t.Errorf("span name %q, want %q", span.Name(), tc.spanName)
			}
			if span.SpanKind() != trace.SpanKindServer {
				t.Errorf("span kind %v, want server", span.SpanKind())
			}
			if s := span.Status(); s.Code != tc.code || s.Description != tc.desc {
				t.Errorf("status %v %q, want %v %q", s.Code, s.Description, tc.code, tc.desc)
			}
		})
	}
}

// failingDeduper fails as a Deduper whose server is down.
type failingDeduper struct{}

func (failingDeduper) Do(context.Context, string, func(context.Context) error) (bool, error) {
	return false, errors.New("redis: connection refused")
}

func TestCallbackSpansNestUnderTheDeliverySpan(t *testing.T) {
	tel := newTelemetry(t)
	h := tel.endpoint(t, bizcircle.CallbackFuncs{Payment: func(ctx context.Context, _ *bizcircle.PaymentEvent) error {
		_, span := tel.tp.Tracer("points").Start(ctx, "award points")
		span.End()
		return nil
	}})
	if got := serve(h, platform.Payment(payment()).Request("/notify")); got != 204 {
		t.Fatalf("status %d, want 204", got)
	}
	ended := tel.spans.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want the callback's and the delivery's", len(ended))
	}
	child, delivery := ended[0], ended[1]
	if child.Parent().SpanID() != delivery.SpanContext().SpanID() || child.SpanContext().TraceID() != delivery.SpanContext().TraceID() {
		t.Errorf("callback span %s has parent %s, want the delivery span %s", child.Name(), child.Parent().SpanID(), delivery.SpanContext().SpanID())
	}
	if delivery.Parent().IsValid() {
		t.Errorf("delivery span has parent %v, want none", delivery.Parent())
	}
}

func TestSpanParent(t *testing.T) {
	const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	incoming := func() *http.Request {
		r := platform.Payment(payment()).Request("/notify")
		r.Header.Set("Traceparent", traceparent)
		return r
	}
	t.Run("a traceparent header is the parent of a server span", func(t *testing.T) {
		tel := newTelemetry(t)
		tel.opts = []otelbizcircle.Option{otelbizcircle.WithPropagator(propagation.TraceContext{})}
		h := tel.endpoint(t, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }})
		serve(h, incoming())
		span := tel.lastSpan(t)
		if got := span.Parent(); got.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || got.SpanID().String() != "b7ad6b7169203331" || !got.IsRemote() {
			t.Errorf("parent %s/%s remote %v, want the traceparent's", got.TraceID(), got.SpanID(), got.IsRemote())
		}
		if span.SpanKind() != trace.SpanKindServer {
			t.Errorf("span kind %v, want server", span.SpanKind())
		}
	})
	t.Run("a span in the request's ctx is the parent of an internal span", func(t *testing.T) {
		tel := newTelemetry(t)
		tel.opts = []otelbizcircle.Option{otelbizcircle.WithPropagator(propagation.TraceContext{})}
		h := tel.endpoint(t, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }})
		ctx, server := tel.tp.Tracer("otelhttp").Start(context.Background(), "POST /notify", trace.WithSpanKind(trace.SpanKindServer))
		serve(h, incoming().WithContext(ctx))
		server.End()
		span := tel.spans.Ended()[0]
		if span.Parent().SpanID() != server.SpanContext().SpanID() {
			t.Errorf("parent %s, want the server span %s", span.Parent().SpanID(), server.SpanContext().SpanID())
		}
		if span.SpanKind() != trace.SpanKindInternal {
			t.Errorf("span kind %v, want internal", span.SpanKind())
		}
	})
}

func TestStoredDeliveryLinksToTheReceivingSpan(t *testing.T) {
	tel := newTelemetry(t)
	opts := []bizcircle.Option{tel.instrument(), bizcircle.WithLogger(discardLogger)}
	disp := bizcircle.NewDispatcher(bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}, opts...)
	mw, err := bizcircle.VerifyAndDecrypt(platform.APIv3Key, platform.Verifier(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	// Queue mode's receipt, in short: store the notification and what
	// Carry returns, answer 204.
	var stored *bizcircle.Notification
	var carried map[string]string
	receive := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := bizcircle.NotificationFromContext(r.Context())
		_, err := disp.DispatchWith(r.Context(), n, func(ctx context.Context, _ string, _ func(context.Context) error) (bizcircle.Outcome, error) {
			stored, carried = n, disp.Carry(ctx)
			return bizcircle.OutcomeStored, nil
		})
		w.WriteHeader(bizcircle.StatusCode(err))
	}))
	if got := serve(receive, platform.Payment(payment()).Request("/notify")); got != 204 {
		t.Fatalf("status %d, want 204", got)
	}
	receiving := tel.lastSpan(t)
	ctx, end := disp.StartStored(context.Background(), bizcircle.Delivery{Header: stored.Signed.Header(), Carried: carried})
	_, err = disp.Dispatch(ctx, stored)
	end()
	if err != nil {
		t.Fatal(err)
	}
	worker := tel.lastSpan(t)

	if got := attrMap(receiving.Attributes())["bizcircle.outcome"]; got != "stored" {
		t.Errorf("receiving span outcome %q, want stored", got)
	}
	if got := attrMap(worker.Attributes())["bizcircle.outcome"]; got != "processed" {
		t.Errorf("worker span outcome %q, want processed", got)
	}
	if worker.SpanKind() != trace.SpanKindConsumer || worker.Parent().IsValid() {
		t.Errorf("worker span is %v with parent %v, want a consumer root span", worker.SpanKind(), worker.Parent())
	}
	links := worker.Links()
	if len(links) != 1 || !links[0].SpanContext.WithRemote(false).Equal(receiving.SpanContext()) {
		t.Fatalf("worker span links %v, want the receiving span %v", links, receiving.SpanContext())
	}
}
