package bizcircle_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"
)

// The mall's own mini-program orders arrive on the same endpoint as
// TRANSACTION.SUCCESS: decode them into wechatpay-go's own model, keyed by
// transaction_id, so a re-push is still one event.
func ExampleOn() {
	wechat := bizcircletest.NewPlatform()
	h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), nil,
		bizcircle.On("TRANSACTION.SUCCESS",
			func(t *payments.Transaction) string { return deref(t.TransactionId) },
			func(ctx context.Context, t *payments.Transaction) error {
				fmt.Println("paid:", deref(t.OutTradeNo), *t.Amount.Total)
				return nil
			}))
	if err != nil {
		panic(err)
	}

	plaintext := []byte(`{"transaction_id":"4200001234","out_trade_no":"order-7","trade_state":"SUCCESS","amount":{"total":880,"currency":"CNY"}}`)
	for range 2 { // the second is a re-push: a new notification ID, the same transaction
		w := httptest.NewRecorder()
		h.ServeHTTP(w, wechat.Notify("TRANSACTION.SUCCESS", "transaction", "支付成功", plaintext).Request("/notify"))
		fmt.Println(w.Code)
	}
	// Output:
	// paid: order-7 880
	// 204
	// 204
}

// deref reads wechatpay-go's optional fields.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// refundNotification models REFUND.SUCCESS, REFUND.ABNORMAL and
// REFUND.CLOSED: wechatpay-go's refund model lacks refund_status.
type refundNotification struct {
	RefundID     string `json:"refund_id"`
	OutRefundNo  string `json:"out_refund_no"`
	RefundStatus string `json:"refund_status"`
	Amount       struct {
		Refund int64 `json:"refund"`
	} `json:"amount"`
}

// One handler for the three refund outcomes, each keyed by refund_id.
func ExampleOn_refunds() {
	wechat := bizcircletest.NewPlatform()
	onRefund := func(ctx context.Context, r *refundNotification) error {
		fmt.Println(r.OutRefundNo, r.RefundStatus, r.Amount.Refund)
		return nil
	}
	byRefundID := func(r *refundNotification) string { return r.RefundID }
	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), nil,
		bizcircle.On("REFUND.SUCCESS", byRefundID, onRefund),
		bizcircle.On("REFUND.ABNORMAL", byRefundID, onRefund),
		bizcircle.On("REFUND.CLOSED", byRefundID, onRefund))

	plaintext := []byte(`{"refund_id":"5030","out_refund_no":"R-7","refund_status":"SUCCESS","amount":{"refund":880}}`)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, wechat.Notify("REFUND.SUCCESS", "refund", "退款成功", plaintext).Request("/notify"))
	fmt.Println(w.Code)
	// Output:
	// R-7 SUCCESS 880
	// 204
}

// OnUnknown receives every event type nothing else handles, deduplicated by
// notification ID: here it logs the type (never the plaintext).
func ExampleOnUnknown() {
	wechat := bizcircletest.NewPlatform()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output for the example
			}
			return a
		},
	}))
	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil },
	}, bizcircle.OnUnknown(func(ctx context.Context, n *bizcircle.Notification) error {
		logger.Info("unhandled WeChat Pay event", "event_type", n.EventType)
		return nil
	}))

	w := httptest.NewRecorder()
	h.ServeHTTP(w, wechat.Notify("COUPON.USE", "coupon", "代金券核销", []byte(`{"stock_id":"9"}`)).Request("/notify"))
	fmt.Println(w.Code)
	// Output:
	// level=INFO msg="unhandled WeChat Pay event" event_type=COUPON.USE
	// 204
}

// Several merchants behind one URL, or a merchant resetting its APIv3 key:
// the other keys are tried in turn, and the Notification says which one
// decrypted it.
func ExampleWithAPIv3Keys() {
	wechat := bizcircletest.NewPlatform()
	second := *wechat // the same platform key, another merchant's APIv3 key
	second.APIv3Key = bizcircletest.RandomAPIv3Key()

	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			n, _ := bizcircle.NotificationFromContext(ctx)
			fmt.Println("decrypted with key", n.KeyIndex)
			return nil
		},
	}, bizcircle.WithAPIv3Keys(second.APIv3Key))

	w := httptest.NewRecorder()
	h.ServeHTTP(w, second.Payment(bizcircletest.SamplePayment()).Request("/notify"))
	fmt.Println(w.Code)
	// Output:
	// decrypted with key 1
	// 204
}
