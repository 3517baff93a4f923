package bizcircle

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Event types of the smart business circle notifications.
const (
	// EventPayment: a shopper paid in a mall shop; award points.
	EventPayment = "MALL_TRANSACTION.SUCCESS"
	// EventRefund: a payment whose points were synced was refunded; take
	// points back.
	EventRefund = "MALL_REFUND.SUCCESS"
	// EventAuthorization: 商圈会员积分服务授权结果通知, a shopper authorized
	// points (membership activation).
	EventAuthorization = "MALL_AUTH.ACTIVATE_CARD"
)

// A Notification is a verified, decrypted notification envelope.
// [VerifyAndDecrypt] puts it in the request's context; read it with
// [NotificationFromContext]. Plaintext is the decrypted resource: treat it as
// confidential and never log it.
type Notification struct {
	ID           string
	CreateTime   time.Time // zero when absent or not RFC 3339
	EventType    string
	ResourceType string
	Summary      string

	// Resource metadata.
	OriginalType   string
	Algorithm      string
	AssociatedData string

	// Serial is the platform certificate serial or public key ID
	// (PUB_KEY_ID_…) whose key verified the signature.
	Serial string
	// RequestID is the Request-ID header, for support tickets with WeChat
	// Pay. It is not signed: longer than 64 bytes or with characters outside
	// printable ASCII, it is shortened and escaped.
	RequestID string
	// KeyIndex is the APIv3 key that decrypted the resource: 0 for the
	// primary key, i for the i-th key given to [WithAPIv3Keys].
	KeyIndex int

	// Plaintext is the decrypted resource.
	Plaintext []byte
	// Signed is the request as WeChat Pay signed it, for storing the
	// notification and verifying it again later; it holds no plaintext.
	Signed SignedRequest
}

// A SignedRequest is a notification as WeChat Pay signed it: what
// [Decoder.DecodeStored] needs to verify and decrypt it again. Its body is
// the envelope with the resource still encrypted, so it is safe to store
// where the plaintext (OpenIDs, amounts) must not be. In JSON the body is
// base64, so every signed byte survives a round trip (through jsonb too).
type SignedRequest struct {
	Timestamp string `json:"timestamp"` // Wechatpay-Timestamp
	Nonce     string `json:"nonce"`     // Wechatpay-Nonce
	Signature string `json:"signature"` // Wechatpay-Signature
	Serial    string `json:"serial"`    // Wechatpay-Serial
	Body      []byte `json:"body"`      // the raw body; do not modify it
}

// Header returns the Wechatpay-* headers of s.
func (s SignedRequest) Header() http.Header {
	return http.Header{
		HeaderTimestamp:     {s.Timestamp},
		HeaderNonce:         {s.Nonce},
		HeaderSignature:     {s.Signature},
		HeaderSerial:        {s.Serial},
		HeaderSignatureType: {SignatureType},
	}
}

type contextKey struct{}

// NotificationFromContext returns the Notification that [VerifyAndDecrypt]
// put in ctx, and whether there was one.
func NotificationFromContext(ctx context.Context) (*Notification, bool) {
	n, ok := ctx.Value(contextKey{}).(*Notification)
	return n, ok && n != nil
}

// NewContext returns a copy of ctx carrying n, for code that verifies with
// [Decoder.Decode] and then calls a handler built by [NewHandler].
func NewContext(ctx context.Context, n *Notification) context.Context {
	return context.WithValue(ctx, contextKey{}, n)
}

// PaymentEvent is the decrypted MALL_TRANSACTION.SUCCESS resource: a
// shopper's payment in a mall shop. Amounts are in fen (0.01 CNY). The
// dispatcher decodes it leniently: unknown fields are ignored, and a time_end
// that is not RFC 3339 is left zero rather than refusing the event.
type PaymentEvent struct {
	MchID        string    `json:"mchid"`         // the shop's merchant ID
	MerchantName string    `json:"merchant_name"` // the mall's name
	ShopName     string    `json:"shop_name"`
	ShopNumber   string    `json:"shop_number"`
	AppID        string    `json:"appid"` // the mall's AppID the OpenID belongs to
	OpenID       string    `json:"openid"`
	TimeEnd      time.Time `json:"time_end"` // when the payment completed
	Amount       int64     `json:"amount"`   // paid amount, fen
	// TransactionID is WeChat Pay's order number, the event's identity.
	TransactionID string `json:"transaction_id"`
	// CommitTag is set only when the shopper submitted the purchase by hand
	// in the points plug-in.
	CommitTag string `json:"commit_tag,omitempty"`
	// Code and AuthType are modelled by some SDKs (unconfirmed by WeChat Pay's
	// pages); empty unless sent.
	Code     string `json:"code,omitempty"`
	AuthType string `json:"auth_type,omitempty"`
}

// RefundEvent is the decrypted MALL_REFUND.SUCCESS resource: a refund of a
// payment whose points were synced. Amounts are in fen. It is decoded as
// leniently as [PaymentEvent].
type RefundEvent struct {
	MchID         string    `json:"mchid"`
	MerchantName  string    `json:"merchant_name"`
	ShopName      string    `json:"shop_name"`
	ShopNumber    string    `json:"shop_number"`
	AppID         string    `json:"appid"`
	OpenID        string    `json:"openid"`
	RefundTime    time.Time `json:"refund_time"`   // zero if not RFC 3339
	PayAmount     int64     `json:"pay_amount"`    // the original payment, fen
	RefundAmount  int64     `json:"refund_amount"` // this refund, fen
	TransactionID string    `json:"transaction_id"`
	// RefundID is WeChat Pay's refund number, the event's identity.
	RefundID string `json:"refund_id"`
}

// Authorization types of [AuthorizationEvent].
const (
	AuthRegistered              = "REGISTERED_MODE"
	AuthRegisteredAndAuthorized = "REGISTERED_AND_AUTHORIZATION_MODE"
)

// AuthorizationEvent is the decrypted MALL_AUTH.ACTIVATE_CARD resource: a
// shopper authorized the mall's points service.
type AuthorizationEvent struct {
	OpenID   string `json:"openid"`
	Code     string `json:"code"` // membership card code
	MchID    string `json:"mchid"`
	AuthType string `json:"auth_type"` // AuthRegistered or AuthRegisteredAndAuthorized
}

// The wire forms decode times leniently, in one pass: a time that is
// absent, empty or not RFC 3339 is left zero rather than failing, because a
// notification refused for it would be retried for a day and then lost.
type paymentWire struct {
	PaymentEvent
	TimeEnd lenientTime `json:"time_end"`
}

type refundWire struct {
	RefundEvent
	RefundTime lenientTime `json:"refund_time"`
}

// lenientTime is RFC 3339 with or without fractional seconds, and zero for
// anything else.
type lenientTime time.Time

func (t *lenientTime) UnmarshalJSON(b []byte) error {
	// An RFC 3339 time needs no JSON unescaping: anything else is zero anyway.
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil
	}
	parsed, _ := time.Parse(time.RFC3339, string(b[1:len(b)-1]))
	*t = lenientTime(parsed)
	return nil
}

// decodePayment and decodeRefund decode the wire form in one allocation.
func decodePayment(plaintext []byte) (*PaymentEvent, error) {
	w := new(paymentWire)
	if err := unmarshalEvent(plaintext, w); err != nil {
		return nil, err
	}
	w.PaymentEvent.TimeEnd = time.Time(w.TimeEnd)
	return &w.PaymentEvent, nil
}

func decodeRefund(plaintext []byte) (*RefundEvent, error) {
	w := new(refundWire)
	if err := unmarshalEvent(plaintext, w); err != nil {
		return nil, err
	}
	w.RefundEvent.RefundTime = time.Time(w.RefundTime)
	return &w.RefundEvent, nil
}

// decoderFor returns T's decoder: the built-in events' lenient one, else
// encoding/json into a new T.
func decoderFor[T any]() func(plaintext []byte) (*T, error) {
	switch any((*T)(nil)).(type) {
	case *PaymentEvent:
		return any(decodePayment).(func([]byte) (*T, error))
	case *RefundEvent:
		return any(decodeRefund).(func([]byte) (*T, error))
	}
	return func(plaintext []byte) (*T, error) {
		e := new(T)
		return e, unmarshalEvent(plaintext, e)
	}
}

// unmarshalEvent wraps json's error without its text, which may quote the
// plaintext.
func unmarshalEvent(plaintext []byte, v any) error {
	if decodeEventFast(plaintext, v) {
		return nil
	}
	if err := json.Unmarshal(plaintext, v); err != nil {
		return fmt.Errorf("%w: not the event's JSON", ErrPlaintext)
	}
	return nil
}
