package bizcircletest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments"
)

// TestEventDecodesToItsPlaintext sends notifications of any type through the
// kit's own Decoder: each verifies, and decrypts to the same event type and
// the same bytes.
func TestEventDecodesToItsPlaintext(t *testing.T) {
	transaction, err := json.Marshal(payments.Transaction{
		Appid:         core.String("wxd678efh567hg6787"),
		Mchid:         core.String("1230000109"),
		OutTradeNo:    core.String("1217752501201407033233368018"),
		TransactionId: core.String("1217752501201407033233368018"),
		TradeType:     core.String("MICROPAY"),
		TradeState:    core.String("SUCCESS"),
		SuccessTime:   core.String("2018-06-08T10:34:56+08:00"),
		Amount:        &payments.TransactionAmount{Total: core.Int64(100), Currency: core.String("CNY")},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		platform     *bizcircletest.Platform
		eventType    string
		plaintext    []byte
		originalType string
		summary      string
	}{
		{"a smart business circle payment keeps WeChat Pay's resource type", bizcircletest.NewPlatform(),
			bizcircle.EventPayment, []byte(`{"transaction_id":"1","amount":1}`), "mall_transaction", "支付成功"},
		{"an authorization keeps WeChat Pay's resource type", bizcircletest.NewPlatform(),
			bizcircle.EventAuthorization, []byte(`{"openid":"o1","code":"C"}`), "mall_auth", "授权成功"},
		{"a direct payment from wechatpay-go's model", bizcircletest.NewPlatform(),
			"TRANSACTION.SUCCESS", transaction, "transaction", "支付成功"},
		{"a refund closed", bizcircletest.NewPlatform(),
			"REFUND.CLOSED", []byte(`{"refund_id":"50000000382019052709732678859","refund_status":"CLOSED"}`), "refund", "退款关闭"},
		{"an undocumented type gets its first word as resource type", bizcircletest.NewPlatform(),
			"COUPON.USE", []byte(`{"coupon_id":"9867041"}`), "coupon", ""},
		{"bytes that are not JSON", bizcircletest.NewPlatform(),
			"MCHTRANSFER.BILL.FINISHED", []byte("<xml>\x00\xff</xml>"), "mchtransfer", ""},
		{"an empty plaintext", bizcircletest.NewPlatform(), "PROFITSHARING.SUCCESS", nil, "profitsharing", ""},
		{"a certificate-mode platform", bizcircletest.NewCertificatePlatform(),
			"REFUND.SUCCESS", []byte(`{"refund_id":"1"}`), "refund", "退款成功"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.platform
			m := p.Event(tt.eventType, tt.plaintext)
			if m.EventType != tt.eventType || !bytes.Equal(m.Plaintext, tt.plaintext) || m.ID == "" {
				t.Fatalf("message: event type %q, plaintext %q, id %q", m.EventType, m.Plaintext, m.ID)
			}
			dec, err := bizcircle.NewDecoder(p.APIv3Key, p.Verifier())
			if err != nil {
				t.Fatal(err)
			}
			n, err := dec.Decode(t.Context(), m.Header, m.Body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n.ID != m.ID || n.EventType != tt.eventType || !bytes.Equal(n.Plaintext, tt.plaintext) {
				t.Errorf("decoded id %q, event type %q, plaintext %q; want %q, %q, %q",
					n.ID, n.EventType, n.Plaintext, m.ID, tt.eventType, tt.plaintext)
			}
			if n.OriginalType != tt.originalType || n.AssociatedData != tt.originalType || n.Summary != tt.summary {
				t.Errorf("original_type %q, associated_data %q, summary %q; want %q, %q, %q",
					n.OriginalType, n.AssociatedData, n.Summary, tt.originalType, tt.originalType, tt.summary)
			}
			if n.Serial != p.Serial {
				t.Errorf("verified by %q, want %q", n.Serial, p.Serial)
			}
		})
	}
}

// TestTypedMessagesAreEvents checks that Payment, Refund and Authorization
// build the same notifications as Event with their plaintext.
func TestTypedMessagesAreEvents(t *testing.T) {
	p := bizcircletest.NewPlatform()
	payment := bizcircletest.SamplePayment()
	for _, m := range []*bizcircletest.Message{
		p.Payment(payment),
		p.Refund(bizcircletest.SampleRefund(payment)),
		p.Authorization(bizcircletest.SampleAuthorization()),
	} {
		want := p.Event(m.EventType, m.Plaintext)
		var got, wantEnv bizcircletest.Envelope
		if err := json.Unmarshal(m.Body, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(want.Body, &wantEnv); err != nil {
			t.Fatal(err)
		}
		if got.EventType != wantEnv.EventType || got.Summary != wantEnv.Summary ||
			got.ResourceType != wantEnv.ResourceType || got.Resource.OriginalType != wantEnv.Resource.OriginalType ||
			got.Resource.AssociatedData != wantEnv.Resource.AssociatedData {
			t.Errorf("%s: envelope %+v, Event's %+v", m.EventType, got, wantEnv)
		}
	}
}

func ExamplePlatform_Event() {
	p := bizcircletest.NewPlatform()
	m := p.Event("TRANSACTION.SUCCESS", []byte(`{"transaction_id":"4200000001","trade_state":"SUCCESS"}`))

	// The receiver's side: verify and decrypt with the platform's keys.
	dec, _ := bizcircle.NewDecoder(p.APIv3Key, p.Verifier())
	n, err := dec.Decode(context.Background(), m.Header, m.Body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.EventType, n.OriginalType, n.ID == m.ID)
	fmt.Println(string(n.Plaintext))
	// Output:
	// TRANSACTION.SUCCESS transaction true
	// {"transaction_id":"4200000001","trade_state":"SUCCESS"}
}
