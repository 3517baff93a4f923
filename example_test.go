package bizcircle_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// The whole endpoint: verify, decrypt, deduplicate and award points.
func ExampleNew() {
	// In production: the APIv3 key and a wechatpay-go verifier for the
	// WeChat Pay public key. Here the test kit plays WeChat Pay.
	wechat := bizcircletest.NewPlatform()

	h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			fmt.Printf("award %d points for %s\n", e.Amount/100, e.TransactionID)
			return nil
		},
	})
	if err != nil {
		panic(err)
	}

	pay := bizcircletest.SamplePayment()
	pay.TransactionID, pay.Amount = "4200000001", 12800
	w := httptest.NewRecorder()
	h.ServeHTTP(w, wechat.Payment(pay).Request("/wechat/bizcircle"))
	fmt.Println(w.Code)
	// Output:
	// award 128 points for 4200000001
	// 204
}

// WeChat Pay delivers a notification again when it is unsure of the answer,
// sometimes concurrently: the callback runs once, every delivery gets 204.
func ExampleNew_duplicate() {
	wechat := bizcircletest.NewPlatform()
	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			fmt.Println("award points once")
			return nil
		},
	})

	m := wechat.Payment(bizcircletest.SamplePayment())
	for range 3 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, m.Request("/notify"))
		fmt.Println(w.Code)
	}
	// Output:
	// award points once
	// 204
	// 204
	// 204
}

// A failing callback answers 500, so WeChat Pay retries; the retry runs the
// callback again. Nothing is lost.
func ExampleNew_retry() {
	wechat := bizcircletest.NewPlatform()
	ledgerUp := false
	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			if !ledgerUp {
				return errors.New("ledger unavailable")
			}
			fmt.Println("points awarded")
			return nil
		},
	}, bizcircle.WithLogger(discardLogger))

	m := wechat.Payment(bizcircletest.SamplePayment())
	for _, up := range []bool{false, true} {
		ledgerUp = up
		w := httptest.NewRecorder()
		h.ServeHTTP(w, m.Request("/notify"))
		fmt.Println(strings.TrimSpace(fmt.Sprint(w.Code, " ", w.Body)))
	}
	// Output:
	// 500 {"code":"FAIL","message":"callback failed"}
	// points awarded
	// 204
}

// The middleware on one route of a ServeMux; the next handler reads the
// verified notification from the context.
func ExampleVerifyAndDecrypt() {
	wechat := bizcircletest.NewPlatform()
	verify, err := bizcircle.VerifyAndDecrypt(wechat.APIv3Key, wechat.Verifier(), bizcircle.WithLogger(discardLogger))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /wechat/bizcircle", verify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := bizcircle.NotificationFromContext(r.Context())
		fmt.Println("verified", n.EventType)
		w.WriteHeader(http.StatusNoContent)
	})))

	srv := httptest.NewServer(mux)
	defer srv.Close()
	m := wechat.Payment(bizcircletest.SamplePayment())
	req, _ := m.NewRequest(context.Background(), srv.URL+"/wechat/bizcircle")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	fmt.Println(resp.StatusCode)

	tampered := m.Clone()
	tampered.Body[len(tampered.Body)-2] ^= 1
	req, _ = tampered.NewRequest(context.Background(), srv.URL+"/wechat/bizcircle")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// verified MALL_TRANSACTION.SUCCESS
	// 204
	// 401
}

// setDeduper is a Deduper on a plain set, to show the contract; a real one
// must also hold keys in flight (see MemoryDeduper and redisdedupe).
type setDeduper struct {
	mu   sync.Mutex
	done map[string]bool
}

func (s *setDeduper) Do(ctx context.Context, key string, fn func(context.Context) error) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done[key] {
		return false, nil
	}
	if err := fn(ctx); err != nil {
		return true, err // not marked: the retry runs fn again
	}
	s.done[key] = true
	return true, nil
}

// A custom Deduper sees keys of the event type and business ID.
func ExampleDeduper() {
	wechat := bizcircletest.NewPlatform()
	d := &setDeduper{done: map[string]bool{}}
	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	}, bizcircle.WithDeduper(d))

	pay := bizcircletest.SamplePayment()
	pay.TransactionID = "4200000002"
	h.ServeHTTP(httptest.NewRecorder(), wechat.Payment(pay).Request("/notify"))
	fmt.Println(d.done)
	// Output:
	// map[MALL_TRANSACTION.SUCCESS:4200000002:true]
}

// The test kit signs and encrypts notifications as WeChat Pay does, and
// builds the ones an endpoint must refuse.
func Example_testKit() {
	wechat := bizcircletest.NewPlatform()
	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}, bizcircle.WithLogger(discardLogger))

	probe := wechat.Refund(bizcircletest.SampleRefund(bizcircletest.SamplePayment()))
	probe.Header.Set(bizcircle.HeaderSignature, bizcircle.SignTestPrefix+"abc")
	for _, m := range []*bizcircletest.Message{
		wechat.Authorization(bizcircletest.SampleAuthorization()),
		probe,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, m.Request("/notify"))
		fmt.Println(m.EventType, strings.TrimSpace(fmt.Sprint(w.Code, " ", w.Body)))
	}
	// Output:
	// MALL_AUTH.ACTIVATE_CARD 204
	// MALL_REFUND.SUCCESS 401 {"code":"FAIL","message":"signature verification failed"}
}

// The raw-bytes entry point, for frameworks that are not net/http.
func ExampleDecoder_Decode() {
	wechat := bizcircletest.NewPlatform()
	dec, _ := bizcircle.NewDecoder(wechat.APIv3Key, wechat.Verifier())
	dispatch := bizcircle.NewDispatcher(bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error { return nil },
	})

	m := wechat.Payment(bizcircletest.SamplePayment())
	// Your framework's headers and body.
	header, body := m.Header, m.Body

	n, err := dec.Decode(context.Background(), header, body)
	var outcome bizcircle.Outcome
	if err == nil {
		outcome, err = dispatch.Dispatch(bizcircle.NewContext(context.Background(), n), n)
	}
	fmt.Println(outcome, bizcircle.StatusCode(err), err)
	// Output:
	// processed 204 <nil>
}
