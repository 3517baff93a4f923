package otelbizcircle_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// errSyncRefused plays queue's ErrSyncRefused, which names itself.
var errSyncRefused = selfNamed{"ErrSyncRefused"}

// sendSync plays one attempt of queue mode's sync worker, with the API it
// uses: the hook's Start with the River job, the sync sent with the ctx it
// returned, End with the result (queue's classification, tested in package
// queue with a fake hook).
func sendSync(hook client.SyncHook, c *client.Client, job bizcircle.Job) {
	ctx := hook.Start(context.Background(), job)
	err := syncPoints(ctx, c)
	result := client.SyncSent
	if apiErr := (*core.APIError)(nil); errors.As(err, &apiErr) && apiErr.StatusCode < 500 && apiErr.StatusCode != http.StatusTooManyRequests {
		result, err = client.SyncRefused, fmt.Errorf("%w: %d %s: %s", errSyncRefused, apiErr.StatusCode, apiErr.Code, apiErr.Message)
	} else if err != nil {
		result = client.SyncRetried
	}
	hook.End(ctx, result, err)
}

func TestSyncAttemptSpanAndMetric(t *testing.T) {
	job := func(attempt int) bizcircle.Job {
		return bizcircle.Job{System: "river", Queue: "bizcircle_sync", ID: "12", Attempt: attempt}
	}
	tests := []struct {
		name     string
		fail     func(*bizcircletest.APIServer)
		attempts int
		want     []map[string]string // each attempt's span attributes beside the job's
		status   []int               // the status of each attempt's request
		counts   map[string]int64
	}{
		{
			name: "a sync WeChat Pay accepts is sent", fail: func(*bizcircletest.APIServer) {}, attempts: 1,
			want:   []map[string]string{{"bizcircle.sync.result": "sent"}},
			status: []int{204},
			counts: map[string]int64{"bizcircle.sync.result=sent": 1},
		},
		{
			name: "a sync answered 500 is retried, then sent", fail: func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailSystemError) }, attempts: 2,
			want:   []map[string]string{{"bizcircle.sync.result": "retried", "error.type": "500"}, {"bizcircle.sync.result": "sent"}},
			status: []int{500, 204},
			counts: map[string]int64{"bizcircle.sync.result=retried,error.type=500": 1, "bizcircle.sync.result=sent": 1},
		},
		{
			name: "a sync refused with a 400 is refused", fail: func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailParamError) }, attempts: 1,
			want:   []map[string]string{{"bizcircle.sync.result": "refused", "error.type": "ErrSyncRefused"}},
			status: []int{400},
			counts: map[string]int64{"bizcircle.sync.result=refused,error.type=ErrSyncRefused": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			api, c := tel.newAPI(t) // no retries of its own: the worker's are River's
			hook := otelbizcircle.InstrumentSync(otelbizcircle.WithTracerProvider(tel.tp), otelbizcircle.WithMeterProvider(tel.mp))
			tt.fail(api)
			for attempt := 1; attempt <= tt.attempts; attempt++ {
				sendSync(hook, c, job(attempt))
			}

			var attempts, requests []sdktrace.ReadOnlySpan
			for _, s := range tel.spans.Ended() {
				switch s.SpanKind() {
				case trace.SpanKindConsumer:
					attempts = append(attempts, s)
				case trace.SpanKindClient:
					requests = append(requests, s)
				}
			}
			if len(attempts) != tt.attempts || len(requests) != tt.attempts {
				t.Fatalf("%d attempt spans and %d request spans, want %d each", len(attempts), len(requests), tt.attempts)
			}
			for i, span := range attempts {
				want := map[string]string{
					"messaging.system":           "river",
					"messaging.operation.type":   "process",
					"messaging.operation.name":   "process",
					"messaging.destination.name": "bizcircle_sync",
					"messaging.message.id":       "12",
					"bizcircle.job.attempt":      strconv.Itoa(i + 1),
				}
				for k, v := range tt.want[i] {
					want[k] = v
				}
				if diff := cmp.Diff(want, attrMap(span.Attributes())); diff != "" {
					t.Errorf("attempt %d: attributes (-want +got):\n%s", i+1, diff)
				}
				if span.Name() != "WeChatPay points sync" {
					t.Errorf("attempt %d: span %q, want WeChatPay points sync", i+1, span.Name())
				}
				failed := tt.want[i]["error.type"] != ""
				if s := span.Status(); (s.Code == codes.Error) != failed || s.Description != tt.want[i]["error.type"] {
					t.Errorf("attempt %d: status %v %q, want an error (named) only if it failed", i+1, s.Code, s.Description)
				}
				request := requests[i]
				if request.Parent().SpanID() != span.SpanContext().SpanID() || request.Name() != "POST /v3/businesscircle/points/notify" {
					t.Errorf("attempt %d: request span %q has parent %s, want POST /v3/businesscircle/points/notify under the attempt's %s",
						i+1, request.Name(), request.Parent().SpanID(), span.SpanContext().SpanID())
				}
				if got := attrMap(request.Attributes())["http.response.status_code"]; got != strconv.Itoa(tt.status[i]) {
					t.Errorf("attempt %d: request answered %s, want %d", i+1, got, tt.status[i])
				}
			}
			m := tel.metrics(t)["bizcircle.sync.attempts"]
			if m.Unit != "{attempt}" {
				t.Errorf("bizcircle.sync.attempts has unit %q, want {attempt}", m.Unit)
			}
			if diff := cmp.Diff(tt.counts, counts(t, m)); diff != "" {
				t.Errorf("bizcircle.sync.attempts (-want +got):\n%s", diff)
			}
		})
	}
}
