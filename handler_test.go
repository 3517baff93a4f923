package bizcircle_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
)

func TestEventsReachTheirCallbacks(t *testing.T) {
	pay := bizcircletest.SamplePayment()
	pay.CommitTag = "oUpF8uMuAJ2pxb1Q9zNjWUHsd"
	refund := bizcircletest.SampleRefund(pay)
	auth := bizcircletest.SampleAuthorization()

	cb := &recorder{}
	h := newEndpoint(t, platform, cb)
	for _, m := range []*bizcircletest.Message{platform.Payment(pay), platform.Refund(refund), platform.Authorization(auth)} {
		if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("%s: status %d body %q, want 204 and no body", m.EventType, w.Code, w.Body)
		}
	}
	if diff := cmp.Diff([]bizcircle.PaymentEvent{pay}, cb.payments); diff != "" {
		t.Errorf("payments (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bizcircle.RefundEvent{refund}, cb.refunds); diff != "" {
		t.Errorf("refunds (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bizcircle.AuthorizationEvent{auth}, cb.auths); diff != "" {
		t.Errorf("authorizations (-want +got):\n%s", diff)
	}
}

func TestPlaintextAsWeChatSendsIt(t *testing.T) {
	// The guide's example, with fractional seconds, an unknown field, and an
	// envelope without summary or associated data.
	plaintext := `{"mchid":"1230000109","merchant_name":"腾讯广场","shop_name":"微信支付","shop_number":"123456",
		"appid":"wxd678efh567hg6787","openid":"oUpF8uMuAJ2pxb1Q9zNjWUHsd","amount":200,
		"time_end":"2020-05-20T13:29:35.120+08:00","transaction_id":"1234567890","new_field":{"x":[1]}}`
	m := platform.Notify(bizcircle.EventPayment, "", "", []byte(plaintext))
	cb := &recorder{}
	if w := serve(newEndpoint(t, platform, cb), m.Request("/notify")); w.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204; body %s", w.Code, w.Body)
	}
	want := bizcircle.PaymentEvent{
		MchID: "1230000109", MerchantName: "腾讯广场", ShopName: "微信支付", ShopNumber: "123456",
		AppID: "wxd678efh567hg6787", OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd", Amount: 200,
		TimeEnd:       time.Date(2020, 5, 20, 13, 29, 35, 120e6, time.FixedZone("", 8*3600)),
		TransactionID: "1234567890",
	}
	if len(cb.payments) != 1 {
		t.Fatalf("%d payments, want 1", len(cb.payments))
	}
	got := cb.payments[0]
	if !got.TimeEnd.Equal(want.TimeEnd) {
		t.Errorf("TimeEnd = %v, want %v", got.TimeEnd, want.TimeEnd)
	}
	got.TimeEnd = want.TimeEnd
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("payment (-want +got):\n%s", diff)
	}
}

func TestNotificationInContext(t *testing.T) {
	m := platform.Payment(bizcircletest.SamplePayment())
	var got *bizcircle.Notification
	h := newEndpoint(t, platform, bizcircle.CallbackFuncs{Payment: func(ctx context.Context, _ *bizcircle.PaymentEvent) error {
		got, _ = bizcircle.NotificationFromContext(ctx)
		return nil
	}})
	serve(h, m.Request("/notify"))
	if got == nil {
		t.Fatal("no Notification in the callback's context")
	}
	want := &bizcircle.Notification{
		ID: m.ID, CreateTime: epoch, EventType: bizcircle.EventPayment, ResourceType: "encrypt-resource",
		Summary: "支付成功", OriginalType: "mall_transaction", Algorithm: bizcircle.AlgorithmAESGCM,
		AssociatedData: "mall_transaction", Serial: platform.Serial,
		RequestID: m.Header.Get(bizcircle.HeaderRequestID), Plaintext: m.Plaintext,
		Signed: bizcircle.SignedRequest{
			Timestamp: m.Header.Get(bizcircle.HeaderTimestamp), Nonce: m.Header.Get(bizcircle.HeaderNonce),
			Signature: m.Header.Get(bizcircle.HeaderSignature), Serial: platform.Serial, Body: m.Body,
		},
	}
	if !got.CreateTime.Equal(epoch) {
		t.Errorf("CreateTime = %v, want %v", got.CreateTime, epoch)
	}
	got.CreateTime = epoch
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Notification (-want +got):\n%s", diff)
	}
	if _, ok := bizcircle.NotificationFromContext(context.Background()); ok {
		t.Error("NotificationFromContext found one in an empty context")
	}
}

func TestVerifiers(t *testing.T) {
	migrating := verifiers.NewSHA256WithRSACombinedVerifier(
		core.NewCertificateMapWithList(nil), platform.Serial, platform.Key.PublicKey)
	// certPlatform's key signs as a certificate while platform's key is the
	// public key, as during a merchant's move from one to the other.
	combined := verifiers.NewSHA256WithRSACombinedVerifier(
		core.NewCertificateMapWithList([]*x509.Certificate{certPlatform.Certificate}), platform.Serial, platform.Key.PublicKey)
	tests := []struct {
		name     string
		signer   *bizcircletest.Platform
		verifier auth.Verifier
		want     int
	}{
		{"a public key", platform, platform.Verifier(), 204},
		{"a platform certificate", certPlatform, certPlatform.Verifier(), 204},
		{"the combined verifier, public key", platform, combined, 204},
		{"the combined verifier, certificate", certPlatform, combined, 204},
		{"the combined verifier without the certificate", certPlatform, migrating, 401},
		{"a certificate verifier given a public key ID", platform, certPlatform.Verifier(), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := &recorder{}
			p := *tc.signer
			p.APIv3Key = platform.APIv3Key
			h, err := bizcircle.New(platform.APIv3Key, tc.verifier, cb, bizcircle.WithClock(fixedClock))
			if err != nil {
				t.Fatal(err)
			}
			w := serve(h, p.Payment(bizcircletest.SamplePayment()).Request("/notify"))
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.want, w.Body)
			}
			if want := int64(map[bool]int{true: 1}[tc.want == 204]); cb.calls.Load() != want {
				t.Errorf("%d callbacks ran, want %d", cb.calls.Load(), want)
			}
		})
	}
}

func TestIgnoredEvents(t *testing.T) {
	tests := []struct {
		name string
		cb   bizcircle.Callbacks
		m    *bizcircletest.Message
	}{
		{"an unknown event type", &recorder{}, platform.Notify("MALL_TRANSACTION.CLOSED", "x", "", []byte(`{}`))},
		{"an authorization for callbacks without OnAuthorization", paymentsOnly{&recorder{}}, platform.Authorization(bizcircletest.SampleAuthorization())},
		{"a refund for CallbackFuncs without Refund", bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}, platform.Refund(bizcircletest.SampleRefund(bizcircletest.SamplePayment()))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var outcomes []bizcircle.Outcome
			d := &countingDeduper{}
			h := newEndpoint(t, platform, tc.cb, bizcircle.WithDeduper(d),
				bizcircle.WithObserver(func(o bizcircle.Observation) { outcomes = append(outcomes, o.Outcome) }))
			if w := serve(h, tc.m.Request("/notify")); w.Code != http.StatusNoContent {
				t.Fatalf("status = %d, want 204", w.Code)
			}
			if r, ok := tc.cb.(*recorder); ok && r.calls.Load() != 0 {
				t.Errorf("%d callbacks ran, want none", r.calls.Load())
			}
			if r, ok := tc.cb.(paymentsOnly); ok && r.r.calls.Load() != 0 {
				t.Errorf("%d callbacks ran, want none", r.r.calls.Load())
			}
			// A nil CallbackFuncs field is ignored too: reported so, and
			// nothing is written to the deduper (pgdedupe would keep a row).
			want := []bizcircle.Outcome{bizcircle.OutcomeVerified, bizcircle.OutcomeIgnored}
			if d.calls.Load() != 0 {
				t.Errorf("the deduper was called %d times, want 0", d.calls.Load())
			}
			if diff := cmp.Diff(want, outcomes); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

// countingDeduper runs every callback and counts its calls.
type countingDeduper struct{ calls atomic.Int64 }

func (d *countingDeduper) Do(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	d.calls.Add(1)
	return true, fn(ctx)
}

// paymentsOnly has no OnAuthorization method.
type paymentsOnly struct{ r *recorder }

func (p paymentsOnly) OnPayment(ctx context.Context, e *bizcircle.PaymentEvent) error {
	return p.r.OnPayment(ctx, e)
}
func (p paymentsOnly) OnRefund(ctx context.Context, e *bizcircle.RefundEvent) error {
	return p.r.OnRefund(ctx, e)
}

func TestDuplicates(t *testing.T) {
	pay := bizcircletest.SamplePayment()
	first := platform.Payment(pay)
	repush := platform.Payment(pay) // a manual re-push: new notification ID, same transaction
	otherPay := pay
	otherPay.TransactionID += "1"
	refund := bizcircletest.SampleRefund(pay)
	refund.RefundID = pay.TransactionID // a refund ID equal to a transaction ID is another event

	cb := &recorder{}
	h := newEndpoint(t, platform, cb)
	for i, m := range []*bizcircletest.Message{first, first, repush, platform.Payment(otherPay), platform.Refund(refund), platform.Refund(refund)} {
		if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
			t.Fatalf("delivery %d: status %d, want 204", i, w.Code)
		}
	}
	if len(cb.payments) != 2 || len(cb.refunds) != 1 {
		t.Errorf("%d payments and %d refunds processed, want 2 and 1", len(cb.payments), len(cb.refunds))
	}
}

// entering counts the deliveries that reached the deduper.
type entering struct {
	bizcircle.Deduper
	n atomic.Int64
}

func (e *entering) Do(ctx context.Context, key string, fn func(context.Context) error) (bool, error) {
	e.n.Add(1)
	return e.Deduper.Do(ctx, key, fn)
}

func TestConcurrentDuplicatesRunOnce(t *testing.T) {
	const deliveries = 50
	m := platform.Payment(bizcircletest.SamplePayment())
	d := &entering{Deduper: memory(t)}
	var calls atomic.Int64
	h := newEndpoint(t, platform, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error {
		calls.Add(1)
		// Hold the key until every delivery has reached the deduper, so all
		// 50 overlap with this one.
		deadline := time.Now().Add(10 * time.Second)
		for d.n.Load() < deliveries && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		return nil
	}}, bizcircle.WithDeduper(d))
	var wg sync.WaitGroup
	codes := make([]int, deliveries)
	for i := range codes {
		wg.Go(func() { codes[i] = serve(h, m.Request("/notify")).Code })
	}
	wg.Wait()
	if d.n.Load() != deliveries {
		t.Fatalf("%d deliveries reached the deduper, want %d", d.n.Load(), deliveries)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("callback ran %d times, want 1", n)
	}
	for i, c := range codes {
		if c != http.StatusNoContent {
			t.Errorf("delivery %d: status %d, want 204", i, c)
		}
	}
}

func TestProcessingFailures(t *testing.T) {
	errLedger := errors.New("ledger down")
	tests := []struct {
		name    string
		cb      bizcircle.CallbackFuncs
		message string
		err     error
	}{
		{"a callback error", bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return errLedger }},
			"callback failed", errLedger},
		{"a callback panic", bizcircle.CallbackFuncs{Payment: func(_ context.Context, e *bizcircle.PaymentEvent) error { panic(e.OpenID) }},
			"callback panicked", bizcircle.ErrCallbackPanic},
		{"a nil-pointer panic", bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error {
			var m map[string]int
			m["x"]++
			return nil
		}}, "callback panicked", bizcircle.ErrCallbackPanic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			var errs []error
			attempts := 0
			failing := tc.cb.Payment
			cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
				attempts++
				if attempts == 1 {
					return failing(ctx, e)
				}
				return nil
			}}
			h := newEndpoint(t, platform, cb, bizcircle.WithLogger(logs.logger()),
				bizcircle.WithObserver(func(o bizcircle.Observation) { errs = append(errs, o.Err) }))
			m := platform.Payment(bizcircletest.SamplePayment())

			w := serve(h, m.Request("/notify"))
			if w.Code != http.StatusInternalServerError || w.Body.String() != failBody(tc.message) {
				t.Fatalf("first delivery: %d %s, want 500 %s", w.Code, w.Body, failBody(tc.message))
			}
			if !errors.Is(errs[len(errs)-1], tc.err) {
				t.Errorf("observed error %v, want errors.Is %v", errs[len(errs)-1], tc.err)
			}
			// The key was released: WeChat's retry runs the callback again.
			if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
				t.Fatalf("retry: status %d, want 204", w.Code)
			}
			if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
				t.Fatalf("duplicate after success: status %d, want 204", w.Code)
			}
			if attempts != 2 {
				t.Errorf("callback ran %d times, want 2 (failure, then retry)", attempts)
			}
			if strings.Contains(logs.String(), "oUpF8uMuAJ2pxb1Q9zNjWUHsd") || strings.Contains(logs.String(), platform.APIv3Key) {
				t.Error("logs contain plaintext or the APIv3 key")
			}
		})
	}
}

// brokenDeduper fails without running fn, as a deduper whose store is down.
type brokenDeduper struct{}

func (brokenDeduper) Do(context.Context, string, func(context.Context) error) (bool, error) {
	return false, errors.New("store unreachable")
}

// busyDeduper reports every key as held by another delivery.
type busyDeduper struct{}

func (busyDeduper) Do(context.Context, string, func(context.Context) error) (bool, error) {
	return false, bizcircle.ErrInFlight
}

func TestDeduperFailures(t *testing.T) {
	tests := []struct {
		name    string
		deduper bizcircle.Deduper
		message string
		err     error
	}{
		{"an unreachable store", brokenDeduper{}, "deduper failed", bizcircle.ErrDeduper},
		{"an in-flight duplicate", busyDeduper{}, "event is being processed", bizcircle.ErrInFlight},
		{"an in-flight duplicate that does not wait", heldDeduper(t), "event is being processed", bizcircle.ErrInFlight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := &recorder{}
			var last error
			h := newEndpoint(t, platform, cb, bizcircle.WithDeduper(tc.deduper),
				bizcircle.WithObserver(func(o bizcircle.Observation) { last = o.Err }))
			w := serve(h, platform.Payment(heldPayment).Request("/notify"))
			if w.Code != http.StatusInternalServerError || w.Body.String() != failBody(tc.message) {
				t.Fatalf("got %d %s, want 500 %s", w.Code, w.Body, failBody(tc.message))
			}
			if cb.calls.Load() != 0 {
				t.Errorf("%d callbacks ran, want none", cb.calls.Load())
			}
			if !errors.Is(last, tc.err) {
				t.Errorf("error %v, want errors.Is %v", last, tc.err)
			}
		})
	}
}

var heldPayment = bizcircletest.SamplePayment()

// heldDeduper returns a MemoryDeduper that does not wait, with heldPayment's
// key held by a delivery that runs until the test ends.
func heldDeduper(t *testing.T) bizcircle.Deduper {
	d := memory(t, bizcircle.WithInFlightWait(0))
	started, release := make(chan struct{}), make(chan struct{})
	go d.Do(context.Background(), bizcircle.EventPayment+":"+heldPayment.TransactionID, func(context.Context) error {
		close(started)
		<-release
		return nil
	})
	<-started
	t.Cleanup(func() { close(release) })
	return d
}

func TestHandlerWithoutMiddleware(t *testing.T) {
	cb := &recorder{}
	h := bizcircle.NewHandler(cb)
	w := serve(h, platform.Payment(bizcircletest.SamplePayment()).Request("/notify"))
	if w.Code != http.StatusInternalServerError || w.Body.String() != failBody("request was not verified") {
		t.Fatalf("got %d %s, want 500 and the failure body", w.Code, w.Body)
	}
	if cb.calls.Load() != 0 {
		t.Errorf("%d callbacks ran, want none", cb.calls.Load())
	}
}

func TestNewDispatcherPanicsOnNilCallbacks(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	bizcircle.NewDispatcher(nil)
}

func TestTimesAreLenient(t *testing.T) {
	for _, tc := range []struct{ name, field string }{
		{"an empty time", `""`},
		{"a time without zone", `"2020-09-16 16:04:02"`},
		{"a number", `1600243442`},
		{"null", `null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := &recorder{}
			h := newEndpoint(t, platform, cb)
			pay := platform.Notify(bizcircle.EventPayment, "mall_transaction", "", []byte(`{"transaction_id":"7","amount":1,"time_end":`+tc.field+`}`))
			refund := platform.Notify(bizcircle.EventRefund, "mall_refund", "", []byte(`{"refund_id":"8","refund_time":`+tc.field+`}`))
			for _, m := range []*bizcircletest.Message{pay, refund} {
				if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
					t.Fatalf("%s: status %d, want 204: the event must not be refused for its time", m.EventType, w.Code)
				}
			}
			if len(cb.payments) != 1 || !cb.payments[0].TimeEnd.IsZero() || cb.payments[0].Amount != 1 {
				t.Errorf("payments = %+v, want one with a zero TimeEnd and its other fields", cb.payments)
			}
			if len(cb.refunds) != 1 || !cb.refunds[0].RefundTime.IsZero() || cb.refunds[0].RefundID != "8" {
				t.Errorf("refunds = %+v, want one with a zero RefundTime", cb.refunds)
			}
		})
	}
}

func TestLogsCarryIDs(t *testing.T) {
	var logs logBuffer
	h := newEndpoint(t, platform, bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return errors.New("ledger down") },
	}, bizcircle.WithLogger(logs.logger()))
	m := platform.Payment(bizcircletest.SamplePayment())
	serve(h, m.Request("/notify"))
	for _, want := range []string{
		"notification_id=" + m.ID,
		"request_id=" + m.Header.Get(bizcircle.HeaderRequestID),
		"event_type=" + bizcircle.EventPayment,
		"outcome=failed",
		"ledger down",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

// countingVerifier counts the signatures it is asked to verify.
type countingVerifier struct {
	auth.Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, serial, message, signature string) error {
	c.calls.Add(1)
	return c.Verifier.Verify(ctx, serial, message, signature)
}

func TestSignTestProbeIsRefusedUnverified(t *testing.T) {
	v := &countingVerifier{Verifier: platform.Verifier()}
	cb := &recorder{}
	h, err := bizcircle.New(platform.APIv3Key, v, cb, bizcircle.WithClock(fixedClock), bizcircle.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	m := platform.Payment(bizcircletest.SamplePayment())
	// A probe whose whole value is valid base64 of the right size.
	m.Header.Set(bizcircle.HeaderSignature, bizcircle.SignTestPrefix+m.Header.Get(bizcircle.HeaderSignature)[19:])
	w := serve(h, m.Request("/notify"))
	if w.Code != http.StatusUnauthorized || cb.calls.Load() != 0 {
		t.Fatalf("status %d, %d callbacks; want 401 and none", w.Code, cb.calls.Load())
	}
	if v.calls.Load() != 0 {
		t.Errorf("the verifier was asked %d times: a probe is refused before verification", v.calls.Load())
	}
}

func TestTypedNilVerifier(t *testing.T) {
	var v *verifiers.SHA256WithRSAVerifier
	if _, err := bizcircle.New(platform.APIv3Key, v, &recorder{}); err == nil {
		t.Fatal("New accepted a typed nil verifier")
	}
}

func TestAllowedIPsWithoutPrefixes(t *testing.T) {
	if _, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), &recorder{}, bizcircle.WithAllowedIPs(nil)); err == nil {
		t.Fatal("New accepted WithAllowedIPs with no prefixes")
	}
}

func TestCallbackErrorWrappingASentinelIsStill500(t *testing.T) {
	h := newEndpoint(t, platform, bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error {
			return fmt.Errorf("calling the points API: %w", bizcircle.ErrSignature)
		},
	}, bizcircle.WithLogger(discardLogger))
	w := serve(h, platform.Payment(bizcircletest.SamplePayment()).Request("/notify"))
	if w.Code != http.StatusInternalServerError || w.Body.String() != failBody("callback failed") {
		t.Fatalf("got %d %s, want 500 callback failed", w.Code, w.Body)
	}
}
