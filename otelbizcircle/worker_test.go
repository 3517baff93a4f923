package otelbizcircle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// work processes a stored message as queue mode's worker does, with the
// bizcircle API it uses: one delivery (StartStored) that verifies it again,
// reports a forged one as rejected with an error that wraps queue's
// ErrUnverified (played by errUnverified), and dispatches the others.
func work(disp *bizcircle.Dispatcher, dec *bizcircle.Decoder, m *bizcircletest.Message, job bizcircle.Job) {
	ctx, end := disp.StartStored(context.Background(), bizcircle.Delivery{Header: m.Header, Job: &job})
	defer end()
	n, err := dec.DecodeStored(ctx, m.Header, m.Body)
	if err != nil {
		disp.ReportStored(ctx, nil, bizcircle.OutcomeRejected, fmt.Errorf("%w: %w", errUnverified, err))
		return
	}
	disp.Dispatch(ctx, n)
}

func TestWorkerSpan(t *testing.T) {
	job := bizcircle.Job{System: "river", Queue: "bizcircle", ID: "7", Attempt: 2}
	messaging := map[string]string{
		"messaging.system":           "river",
		"messaging.operation.type":   "process",
		"messaging.operation.name":   "process",
		"messaging.destination.name": "bizcircle",
		"messaging.message.id":       "7",
		"bizcircle.job.attempt":      "2",
	}
	for _, tc := range []struct {
		name     string
		payment  func(context.Context, *bizcircle.PaymentEvent) error
		message  func() *bizcircletest.Message
		verified bool
		attrs    map[string]string // besides the job's and the IDs
		code     codes.Code
		desc     string
		counts   map[string]int64 // bizcircle.notifications
	}{
		{
			name:     "a stored payment is processed in a Consumer span with its job's messaging attributes",
			payment:  func(context.Context, *bizcircle.PaymentEvent) error { return nil },
			message:  func() *bizcircletest.Message { return platform.Payment(payment()) },
			verified: true,
			attrs:    map[string]string{"bizcircle.outcome": "processed", "bizcircle.dedupe": "new"},
			counts:   map[string]int64{"bizcircle.event_type=MALL_TRANSACTION.SUCCESS,bizcircle.outcome=processed": 1},
		},
		{
			name:    "a forged row is rejected with error.type ErrUnverified and an error status",
			payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
			message: func() *bizcircletest.Message {
				m := platform.Payment(payment())
				m.Body = []byte(strings.Replace(string(m.Body), `"id":"`, `"id":"x`, 1))
				return m
			},
			attrs:  map[string]string{"bizcircle.outcome": "rejected", "error.type": "ErrUnverified"},
			code:   codes.Error,
			desc:   "ErrUnverified",
			counts: map[string]int64{"bizcircle.outcome=rejected,error.type=ErrUnverified": 1},
		},
		{
			name:     "a failing callback in a worker is an error",
			payment:  func(context.Context, *bizcircle.PaymentEvent) error { return errors.New("ledger offline") },
			message:  func() *bizcircletest.Message { return platform.Payment(payment()) },
			verified: true,
			attrs:    map[string]string{"bizcircle.outcome": "failed", "bizcircle.dedupe": "new", "error.type": "ErrCallback"},
			code:     codes.Error,
			desc:     bizcircle.ErrCallback.Error(),
			counts:   map[string]int64{"bizcircle.event_type=MALL_TRANSACTION.SUCCESS,bizcircle.outcome=failed,error.type=ErrCallback": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			opts := []bizcircle.Option{tel.instrument(), bizcircle.WithLogger(discardLogger)}
			dec, err := bizcircle.NewDecoder(platform.APIv3Key, platform.Verifier(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			disp := bizcircle.NewDispatcher(bizcircle.CallbackFuncs{Payment: tc.payment}, opts...)
			m := tc.message()
			work(disp, dec, m, job)

			if n := len(tel.spans.Ended()); n != 1 {
				t.Fatalf("%d spans, want the worker's", n)
			}
			span := tel.lastSpan(t)
			want := map[string]string{}
			for k, v := range messaging {
				want[k] = v
			}
			for k, v := range tc.attrs {
				want[k] = v
			}
			if tc.verified {
				want["bizcircle.event_type"], want["bizcircle.notification_id"] = m.EventType, m.ID
				want["bizcircle.request_id"] = m.Header.Get(bizcircle.HeaderRequestID)
			}
			if diff := cmp.Diff(want, attrMap(span.Attributes())); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			if span.SpanKind() != trace.SpanKindConsumer {
				t.Errorf("span kind %v, want consumer", span.SpanKind())
			}
			if s := span.Status(); s.Code != tc.code || s.Description != tc.desc {
				t.Errorf("status %v %q, want %v %q", s.Code, s.Description, tc.code, tc.desc)
			}
			if diff := cmp.Diff(tc.counts, counts(t, tel.metrics(t)["bizcircle.notifications"])); diff != "" {
				t.Errorf("bizcircle.notifications (-want +got):\n%s", diff)
			}
		})
	}
}
