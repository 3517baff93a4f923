package bizcircle_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/google/go-cmp/cmp"
)

// refundNotice is a small model of WeChat Pay's REFUND.* plaintext.
type refundNotice struct {
	RefundID     string `json:"refund_id"`
	OutRefundNo  string `json:"out_refund_no"`
	RefundStatus string `json:"refund_status"`
}

func refundPlaintext(id, status string) []byte {
	return []byte(`{"mchid":"1900000100","out_refund_no":"R` + id + `","refund_id":"` + id +
		`","refund_status":"` + status + `","amount":{"total":999,"refund":999},"extra":[1,{"x":null}]}`)
}

func TestOnDispatchesTypedEventsOncePerBusinessKey(t *testing.T) {
	var got []refundNotice
	var calls atomic.Int64
	var obs []bizcircle.Outcome
	h := newEndpoint(t, platform, nil,
		bizcircle.On("REFUND.SUCCESS", func(e *refundNotice) string { return e.RefundID },
			func(_ context.Context, e *refundNotice) error {
				calls.Add(1)
				got = append(got, *e)
				return nil
			}),
		bizcircle.WithObserver(func(o bizcircle.Observation) { obs = append(obs, o.Outcome) }))

	first := platform.Notify("REFUND.SUCCESS", "refund", "退款成功", refundPlaintext("5030", "SUCCESS"))
	repush := platform.Notify("REFUND.SUCCESS", "refund", "退款成功", refundPlaintext("5030", "SUCCESS")) // new notification ID
	other := platform.Notify("REFUND.SUCCESS", "refund", "退款成功", refundPlaintext("5031", "SUCCESS"))
	closed := platform.Notify("REFUND.CLOSED", "refund", "退款关闭", refundPlaintext("5030", "CLOSED"))
	for _, m := range []*bizcircletest.Message{first, repush, first, other, closed} {
		if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
			t.Fatalf("%s: status %d body %s, want 204", m.EventType, w.Code, w.Body)
		}
	}
	want := []refundNotice{{"5030", "R5030", "SUCCESS"}, {"5031", "R5031", "SUCCESS"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	v, p, d, i := bizcircle.OutcomeVerified, bizcircle.OutcomeProcessed, bizcircle.OutcomeDuplicate, bizcircle.OutcomeIgnored
	if diff := cmp.Diff([]bizcircle.Outcome{v, p, v, d, v, d, v, p, v, i}, obs); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestOnWithoutKeyUsesTheNotificationID(t *testing.T) {
	var calls atomic.Int64
	h := newEndpoint(t, platform, nil, bizcircle.On("COMPLAINT.CREATE", nil,
		func(context.Context, *map[string]any) error { calls.Add(1); return nil }))
	a := platform.Notify("COMPLAINT.CREATE", "complaint", "", []byte(`{"complaint_id":"1","action_type":"CREATE"}`))
	b := platform.Notify("COMPLAINT.CREATE", "complaint", "", []byte(`{"complaint_id":"1","action_type":"CREATE"}`))
	for _, m := range []*bizcircletest.Message{a, a, b} {
		if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
			t.Fatalf("status %d, want 204", w.Code)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2: one per notification ID", calls.Load())
	}
}

func TestOnRefusesPlaintextWithoutItsKey(t *testing.T) {
	tests := []struct {
		name      string
		plaintext string
	}{
		{"the key returns empty", `{"refund_id":"","refund_status":"SUCCESS"}`},
		{"the key field is absent", `{"refund_status":"SUCCESS"}`},
		{"the plaintext is not the type's JSON", `{"refund_id":5030}`},
		{"the plaintext is XML", `<xml><refund_id>5030</refund_id></xml>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			var errs []error
			h := newEndpoint(t, platform, nil,
				bizcircle.On("REFUND.SUCCESS", func(e *refundNotice) string { return e.RefundID },
					func(context.Context, *refundNotice) error { calls.Add(1); return nil }),
				bizcircle.WithObserver(func(o bizcircle.Observation) {
					if o.Err != nil {
						errs = append(errs, o.Err)
					}
				}))
			m := platform.Notify("REFUND.SUCCESS", "refund", "", []byte(tc.plaintext))
			w := serve(h, m.Request("/notify"))
			if w.Code != http.StatusBadRequest || w.Body.String() != failBody("plaintext is not the event's JSON") {
				t.Fatalf("got %d %s, want 400 and the plaintext failure", w.Code, w.Body)
			}
			if calls.Load() != 0 {
				t.Errorf("%d callbacks ran, want none", calls.Load())
			}
			if len(errs) != 1 || !errors.Is(errs[0], bizcircle.ErrPlaintext) {
				t.Errorf("observed errors %v, want one ErrPlaintext", errs)
			}
		})
	}
}

// panicky panics when decoded, as a buggy UnmarshalJSON would.
type panicky struct{}

func (*panicky) UnmarshalJSON([]byte) error { panic("bug in UnmarshalJSON") }

func TestPanicsBeforeTheCallbackAreA500(t *testing.T) {
	var calls atomic.Int64
	for name, opt := range map[string]bizcircle.Option{
		"the key func panics": bizcircle.On("REFUND.SUCCESS",
			func(e *refundNotice) string { panic("bug in the key func") },
			func(context.Context, *refundNotice) error { calls.Add(1); return nil }),
		"decoding panics": bizcircle.On("REFUND.SUCCESS", nil,
			func(context.Context, *panicky) error { calls.Add(1); return nil }),
	} {
		t.Run(name, func(t *testing.T) {
			var last bizcircle.Observation
			h := newEndpoint(t, platform, nil, opt, bizcircle.WithLogger(discardLogger),
				bizcircle.WithObserver(func(o bizcircle.Observation) { last = o }))
			w := serve(h, platform.Notify("REFUND.SUCCESS", "refund", "", refundPlaintext("1", "SUCCESS")).Request("/notify"))
			if w.Code != http.StatusInternalServerError || calls.Load() != 0 {
				t.Fatalf("got %d and %d calls, want 500 and none", w.Code, calls.Load())
			}
			if last.Outcome != bizcircle.OutcomeFailed || !errors.Is(last.Err, bizcircle.ErrCallbackPanic) {
				t.Errorf("observed %v %v, want failed with ErrCallbackPanic", last.Outcome, last.Err)
			}
		})
	}
}

func catchAll(context.Context, *bizcircle.Notification) error { return nil }

func TestOnUnknownCatchesWhatNothingHandles(t *testing.T) {
	var types []string
	h := newEndpoint(t, platform, bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	},
		bizcircle.On("REFUND.SUCCESS", nil, func(context.Context, *refundNotice) error { return nil }),
		bizcircle.OnUnknown(func(_ context.Context, n *bizcircle.Notification) error {
			types = append(types, n.EventType)
			return nil
		}))
	coupon := platform.Notify("COUPON.USE", "coupon", "", []byte(`{"coupon_id":"9"}`))
	msgs := []*bizcircletest.Message{
		platform.Payment(bizcircletest.SamplePayment()),
		platform.Notify("REFUND.SUCCESS", "refund", "", refundPlaintext("1", "SUCCESS")),
		coupon, coupon, // a duplicate by notification ID
		platform.Refund(bizcircletest.SampleRefund(bizcircletest.SamplePayment())), // CallbackFuncs.Refund is nil
		platform.Notify("MALL_TRANSACTION.CLOSED", "x", "", []byte(`not even JSON`)),
	}
	for _, m := range msgs {
		if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
			t.Fatalf("%s: status %d, want 204", m.EventType, w.Code)
		}
	}
	want := []string{"COUPON.USE", bizcircle.EventRefund, "MALL_TRANSACTION.CLOSED"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("OnUnknown saw (-want +got):\n%s", diff)
	}
}

func TestOnUnknownFailureIsRetried(t *testing.T) {
	var calls atomic.Int64
	h := newEndpoint(t, platform, nil, bizcircle.WithLogger(discardLogger),
		bizcircle.OnUnknown(func(context.Context, *bizcircle.Notification) error {
			if calls.Add(1) == 1 {
				return errors.New("down")
			}
			return nil
		}))
	m := platform.Notify("COUPON.USE", "coupon", "", []byte(`{}`))
	for i, want := range []int{500, 204, 204} {
		if w := serve(h, m.Request("/notify")); w.Code != want {
			t.Fatalf("delivery %d: status %d, want %d", i+1, w.Code, want)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2", calls.Load())
	}
}

func TestConflictingRegistrations(t *testing.T) {
	noop := func(context.Context, *bizcircle.PaymentEvent) error { return nil }
	pay := bizcircle.On(bizcircle.EventPayment, nil, noop)
	tests := []struct {
		name string
		cb   bizcircle.Callbacks
		opts []bizcircle.Option
	}{
		{"two On for one type", nil, []bizcircle.Option{pay, bizcircle.On(bizcircle.EventPayment, nil, noop)}},
		{"On for a type CallbackFuncs handle", bizcircle.CallbackFuncs{Payment: noop}, []bizcircle.Option{pay}},
		{"On for a type Callbacks handle", &recorder{}, []bizcircle.Option{pay}},
		{"On for authorizations Callbacks handle", &recorder{}, []bizcircle.Option{
			bizcircle.On(bizcircle.EventAuthorization, nil, func(context.Context, *bizcircle.AuthorizationEvent) error { return nil })}},
		{"On with an empty event type", nil, []bizcircle.Option{bizcircle.On("", nil, noop)}},
		{"On with a nil func", nil, []bizcircle.Option{bizcircle.On[bizcircle.PaymentEvent]("X", nil, nil)}},
		{"a nil OnUnknown", nil, []bizcircle.Option{bizcircle.OnUnknown(nil)}},
		{"two OnUnknown", nil, []bizcircle.Option{bizcircle.OnUnknown(catchAll), bizcircle.OnUnknown(catchAll)}},
		{"no handler at all", nil, nil},
		{"an empty CallbackFuncs", bizcircle.CallbackFuncs{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), tc.cb, tc.opts...); err == nil {
				t.Error("New: no error")
			}
			func() {
				defer func() {
					if p := recover(); p == nil {
						t.Error("NewHandler: no panic")
					} else if !strings.HasPrefix(p.(string), "bizcircle: ") {
						t.Errorf("panic %q, want a bizcircle message", p)
					}
				}()
				bizcircle.NewHandler(tc.cb, tc.opts...)
			}()
		})
	}
	// VerifyAndDecrypt sees the options only: two On for one type.
	if _, err := bizcircle.VerifyAndDecrypt(platform.APIv3Key, platform.Verifier(), tests[0].opts...); err == nil ||
		!strings.Contains(err.Error(), `two handlers for event type "MALL_TRANSACTION.SUCCESS"`) {
		t.Errorf("VerifyAndDecrypt: %v, want the conflict", err)
	}
	// Without a conflict, a nil CallbackFuncs field leaves the type to On.
	if _, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{}, pay); err != nil {
		t.Errorf("On beside an unset CallbackFuncs field: %v", err)
	}
}

func TestSeveralAPIv3Keys(t *testing.T) {
	second, third := *platform, *platform // same platform key, other APIv3 keys
	second.APIv3Key, third.APIv3Key = bizcircletest.RandomAPIv3Key(), bizcircletest.RandomAPIv3Key()
	var keys []int
	h := newEndpoint(t, platform, bizcircle.CallbackFuncs{Payment: func(ctx context.Context, _ *bizcircle.PaymentEvent) error {
		n, _ := bizcircle.NotificationFromContext(ctx)
		keys = append(keys, n.KeyIndex)
		return nil
	}}, bizcircle.WithAPIv3Keys(second.APIv3Key), bizcircle.WithLogger(discardLogger))

	pay := bizcircletest.SamplePayment()
	if w := serve(h, platform.Payment(pay).Request("/notify")); w.Code != http.StatusNoContent {
		t.Fatalf("primary key: status %d", w.Code)
	}
	pay.TransactionID += "2"
	if w := serve(h, second.Payment(pay).Request("/notify")); w.Code != http.StatusNoContent {
		t.Fatalf("second key: status %d", w.Code)
	}
	pay.TransactionID += "3"
	w := serve(h, third.Payment(pay).Request("/notify"))
	if w.Code != http.StatusBadRequest || w.Body.String() != failBody("resource decryption failed") {
		t.Fatalf("unconfigured key: %d %s, want 400 and the decryption failure", w.Code, w.Body)
	}
	if diff := cmp.Diff([]int{0, 1}, keys); diff != "" {
		t.Errorf("KeyIndex (-want +got):\n%s", diff)
	}
}

func TestAPIv3KeysMustBeValid(t *testing.T) {
	for name, keys := range map[string][]string{
		"a short key":           {"0123456789"},
		"the primary key again": {platform.APIv3Key},
		"a key given twice":     {"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"},
	} {
		if _, err := bizcircle.VerifyAndDecrypt(platform.APIv3Key, platform.Verifier(), bizcircle.WithAPIv3Keys(keys...)); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), platform.APIv3Key) || strings.Contains(err.Error(), "0123456789") {
			t.Errorf("%s: error %q quotes a key", name, err)
		}
	}
}
