package bizcircletest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// A Message is one signed notification: the headers and body WeChat Pay
// sends. Change Header or Body after signing to build notifications that
// must be rejected.
type Message struct {
	ID        string
	EventType string
	// Plaintext is the resource before encryption.
	Plaintext []byte
	Header    http.Header
	Body      []byte
}

// Payment returns a MALL_TRANSACTION.SUCCESS notification carrying e.
func (p *Platform) Payment(e bizcircle.PaymentEvent) *Message {
	return p.Event(bizcircle.EventPayment, mustJSON(e))
}

// Refund returns a MALL_REFUND.SUCCESS notification carrying e.
func (p *Platform) Refund(e bizcircle.RefundEvent) *Message {
	return p.Event(bizcircle.EventRefund, mustJSON(e))
}

// Authorization returns a MALL_AUTH.ACTIVATE_CARD notification carrying e.
func (p *Platform) Authorization(e bizcircle.AuthorizationEvent) *Message {
	return p.Event(bizcircle.EventAuthorization, mustJSON(e))
}

// Event returns a notification of any event type carrying plaintext, any
// bytes, as its encrypted resource: what WeChat Pay sends for every APIv3
// notification, such as TRANSACTION.SUCCESS or REFUND.SUCCESS with the
// plaintext of the API's documentation. The resource's original_type (also
// its associated data) and the summary are WeChat Pay's for the event types
// it documents (the three smart business circle events, TRANSACTION.SUCCESS,
// REFUND.SUCCESS/ABNORMAL/CLOSED); for other types, original_type is the
// event type's first word in lower case (COUPON.USE gives "coupon") and the
// summary is empty. Use [Platform.Notify] to choose them.
func (p *Platform) Event(eventType string, plaintext []byte) *Message {
	if r, ok := knownResources[eventType]; ok {
		return p.Notify(eventType, r.originalType, r.summary, plaintext)
	}
	first, _, _ := strings.Cut(eventType, ".")
	return p.Notify(eventType, strings.ToLower(first), "", plaintext)
}

// knownResources are the original_type and summary WeChat Pay documents
// for an event type.
var knownResources = map[string]struct{ originalType, summary string }{
	bizcircle.EventPayment:       {"mall_transaction", "支付成功"},
	bizcircle.EventRefund:        {"mall_refund", "退款成功"},
	bizcircle.EventAuthorization: {"mall_auth", "授权成功"},
	"TRANSACTION.SUCCESS":        {"transaction", "支付成功"},
	"REFUND.SUCCESS":             {"refund", "退款成功"},
	"REFUND.ABNORMAL":            {"refund", "退款异常"},
	"REFUND.CLOSED":              {"refund", "退款关闭"},
}

// Notify returns a notification of any event type: plaintext is encrypted
// as the resource with originalType as its associated data, the envelope
// gets a fresh ID, and the body is signed. [Platform.Event] chooses
// originalType and summary for the caller.
func (p *Platform) Notify(eventType, originalType, summary string, plaintext []byte) *Message {
	ciphertext, nonce := p.Encrypt(plaintext, originalType)
	id := newID()
	body := mustJSON(Envelope{
		ID:           id,
		CreateTime:   p.now().Format(time.RFC3339),
		ResourceType: "encrypt-resource",
		EventType:    eventType,
		Summary:      summary,
		Resource: Resource{
			OriginalType:   originalType,
			Algorithm:      bizcircle.AlgorithmAESGCM,
			Ciphertext:     ciphertext,
			AssociatedData: originalType,
			Nonce:          nonce,
		},
	})
	m := p.Signed(body)
	m.ID, m.EventType, m.Plaintext = id, eventType, plaintext
	return m
}

// Envelope is a notification body as WeChat Pay sends it; marshal one with
// odd fields and sign it with [Platform.Signed] to test malformed envelopes.
type Envelope struct {
	ID           string   `json:"id"`
	CreateTime   string   `json:"create_time"`
	ResourceType string   `json:"resource_type"`
	EventType    string   `json:"event_type"`
	Summary      string   `json:"summary"`
	Resource     Resource `json:"resource"`
}

// Resource is an envelope's encrypted resource.
type Resource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// Signed returns a Message whose body is body as given, signed with a fresh
// timestamp and nonce: WeChat Pay's headers for any bytes.
func (p *Platform) Signed(body []byte) *Message {
	ts := strconv.FormatInt(p.now().Unix(), 10)
	nonce := randomString(32)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(bizcircle.HeaderTimestamp, ts)
	h.Set(bizcircle.HeaderNonce, nonce)
	h.Set(bizcircle.HeaderSignature, p.Sign(ts, nonce, body))
	h.Set(bizcircle.HeaderSerial, p.Serial)
	h.Set(bizcircle.HeaderSignatureType, bizcircle.SignatureType)
	h.Set(bizcircle.HeaderRequestID, newID())
	return &Message{Header: h, Body: body}
}

// Sign returns the base64 SHA256-with-RSA signature of
// "timestamp\nnonce\nbody\n" with the platform key.
func (p *Platform) Sign(timestamp, nonce string, body []byte) string {
	return must(utils.SignSHA256WithRSA(timestamp+"\n"+nonce+"\n"+string(body)+"\n", p.Key))
}

// Encrypt seals plaintext with AEAD_AES_256_GCM under the APIv3 key and a
// fresh 12-character nonce, returning base64(ciphertext||tag) and the nonce.
func (p *Platform) Encrypt(plaintext []byte, associatedData string) (ciphertext, nonce string) {
	block := must(aes.NewCipher([]byte(p.APIv3Key)))
	aead := must(cipher.NewGCM(block))
	nonce = randomString(12)
	sealed := aead.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return base64.StdEncoding.EncodeToString(sealed), nonce
}

// Request returns a server-side request carrying m, to pass to an
// http.Handler's ServeHTTP, as httptest.NewRequest does (it panics on error).
func (m *Message) Request(target string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(m.Body))
	r.Header = m.Header.Clone()
	return r
}

// NewRequest returns a client request that POSTs m to url.
func (m *Message) NewRequest(ctx context.Context, url string) (*http.Request, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(m.Body))
	if err != nil {
		return nil, fmt.Errorf("bizcircletest: %w", err)
	}
	r.Header = m.Header.Clone()
	return r, nil
}

// Clone returns a deep copy of m, to tamper with.
func (m *Message) Clone() *Message {
	c := *m
	c.Header = m.Header.Clone()
	c.Body = bytes.Clone(m.Body)
	c.Plaintext = bytes.Clone(m.Plaintext)
	return &c
}

func (p *Platform) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func mustJSON(v any) []byte { return must(json.Marshal(v)) }

const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	must(rand.Read(b))
	for i := range b {
		b[i] = alphanumeric[int(b[i])%len(alphanumeric)]
	}
	return string(b)
}

// newID returns a random UUID-shaped ID, like WeChat Pay's notification IDs.
func newID() string {
	b := make([]byte, 16)
	must(rand.Read(b))
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
