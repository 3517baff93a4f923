package bizcircle_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// badRequest is one bad input: the request it sends and what it must get.
type badRequest struct {
	name    string
	request func() *http.Request
	status  int
	message string
	err     error
}

// signedEnvelope signs an envelope built from a good payment and changed by
// edit, so everything but the changed part is valid.
func signedEnvelope(edit func(e *bizcircletest.Envelope)) *http.Request {
	m := platform.Payment(bizcircletest.SamplePayment())
	var e bizcircletest.Envelope
	if err := json.Unmarshal(m.Body, &e); err != nil {
		panic(err)
	}
	edit(&e)
	body, _ := json.Marshal(e)
	return platform.Signed(body).Request("/notify")
}

// signedPlaintext encrypts and signs plaintext as a notification of eventType.
func signedPlaintext(eventType, plaintext string) *http.Request {
	return platform.Notify(eventType, "mall_transaction", "", []byte(plaintext)).Request("/notify")
}

// payment returns a good payment request changed by edit.
func payment(edit func(m *bizcircletest.Message)) func() *http.Request {
	return func() *http.Request {
		m := platform.Payment(bizcircletest.SamplePayment())
		edit(m)
		return m.Request("/notify")
	}
}

func withTimestamp(ts time.Time) func() *http.Request {
	return func() *http.Request {
		p := *platform
		p.Now = func() time.Time { return ts }
		return p.Payment(bizcircletest.SamplePayment()).Request("/notify")
	}
}

var badRequests = []badRequest{
	// 405
	{"GET is not allowed", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/notify", nil) },
		405, "method not allowed", bizcircle.ErrMethod},
	{"PUT is not allowed", func() *http.Request {
		r := platform.Payment(bizcircletest.SamplePayment()).Request("/notify")
		r.Method = http.MethodPut
		return r
	}, 405, "method not allowed", bizcircle.ErrMethod},
	// 413
	{"a body over the limit", func() *http.Request {
		return httptest.NewRequest(http.MethodPost, "/notify", strings.NewReader(strings.Repeat("x", 64<<10+1)))
	}, 413, "body too large", bizcircle.ErrBodyTooLarge},
	{"a chunked body over the limit", func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/notify", io.MultiReader(strings.NewReader(strings.Repeat("x", 64<<10)), strings.NewReader("y")))
		r.ContentLength = -1
		return r
	}, 413, "body too large", bizcircle.ErrBodyTooLarge},
	{"a Content-Length that claims too much", func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/notify", strings.NewReader("{}"))
		r.ContentLength = 1 << 30
		return r
	}, 413, "body too large", bizcircle.ErrBodyTooLarge},
	// 401: headers
	{"no Wechatpay headers at all", func() *http.Request {
		m := platform.Payment(bizcircletest.SamplePayment())
		return httptest.NewRequest(http.MethodPost, "/notify", bytes.NewReader(m.Body))
	}, 401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"no Wechatpay-Timestamp", payment(func(m *bizcircletest.Message) { m.Header.Del(bizcircle.HeaderTimestamp) }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"no Wechatpay-Nonce", payment(func(m *bizcircletest.Message) { m.Header.Del(bizcircle.HeaderNonce) }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"no Wechatpay-Signature", payment(func(m *bizcircletest.Message) { m.Header.Del(bizcircle.HeaderSignature) }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"no Wechatpay-Serial", payment(func(m *bizcircletest.Message) { m.Header.Del(bizcircle.HeaderSerial) }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"a blank Wechatpay-Nonce", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderNonce, "  ") }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"a Wechatpay-Timestamp that is not a number", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderTimestamp, "yesterday") }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"a Wechatpay-Timestamp that overflows", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderTimestamp, "99999999999999999999") }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	{"an unsupported Wechatpay-Signature-Type", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderSignatureType, "WECHATPAY2-SM2-WITH-SM3") }),
		401, "missing or malformed Wechatpay header", bizcircle.ErrHeader},
	// 401: timestamp window
	{"a timestamp 5m1s old", withTimestamp(epoch.Add(-5*time.Minute - time.Second)),
		401, "timestamp outside the tolerance window", bizcircle.ErrTimestamp},
	{"a timestamp 5m1s ahead", withTimestamp(epoch.Add(5*time.Minute + time.Second)),
		401, "timestamp outside the tolerance window", bizcircle.ErrTimestamp},
	{"a timestamp from 1970", withTimestamp(time.Unix(0, 0)),
		401, "timestamp outside the tolerance window", bizcircle.ErrTimestamp},
	{"a negative timestamp", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderTimestamp, "-9223372036854775808") }),
		401, "timestamp outside the tolerance window", bizcircle.ErrTimestamp},
	// 401: signature
	{"a WECHATPAY/SIGNTEST/ probe", payment(func(m *bizcircletest.Message) {
		m.Header.Set(bizcircle.HeaderSignature, "WECHATPAY/SIGNTEST/"+m.Header.Get(bizcircle.HeaderSignature))
	}), 401, "signature verification failed", bizcircle.ErrSignature},
	{"a signature by another key", payment(func(m *bizcircletest.Message) {
		ts, nonce := m.Header.Get(bizcircle.HeaderTimestamp), m.Header.Get(bizcircle.HeaderNonce)
		m.Header.Set(bizcircle.HeaderSignature, otherKey.Sign(ts, nonce, m.Body))
	}), 401, "signature verification failed", bizcircle.ErrSignature},
	{"an unknown serial", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderSerial, otherKey.Serial) }),
		401, "signature verification failed", bizcircle.ErrSignature},
	{"a tampered body", payment(func(m *bizcircletest.Message) { m.Body = bytes.Replace(m.Body, []byte(`"id":"`), []byte(`"id":"x`), 1) }),
		401, "signature verification failed", bizcircle.ErrSignature},
	{"a tampered nonce", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderNonce, "another") }),
		401, "signature verification failed", bizcircle.ErrSignature},
	{"a timestamp changed within the window", payment(func(m *bizcircletest.Message) {
		m.Header.Set(bizcircle.HeaderTimestamp, strconv.FormatInt(epoch.Unix()-1, 10))
	}), 401, "signature verification failed", bizcircle.ErrSignature},
	{"a signature that is not base64", payment(func(m *bizcircletest.Message) { m.Header.Set(bizcircle.HeaderSignature, "%%%not base64%%%") }),
		401, "signature verification failed", bizcircle.ErrSignature},
	{"an unsigned empty body", func() *http.Request {
		r := payment(func(*bizcircletest.Message) {})()
		r.Body, r.ContentLength = http.NoBody, 0
		return r
	}, 401, "signature verification failed", bizcircle.ErrSignature},
	// 400: envelope
	{"a signed body that is not JSON", func() *http.Request { return platform.Signed([]byte("not json")).Request("/notify") },
		400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"a signed empty body", func() *http.Request { return platform.Signed(nil).Request("/notify") },
		400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"a signed JSON array", func() *http.Request { return platform.Signed([]byte("[1,2]")).Request("/notify") },
		400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"an envelope without id", func() *http.Request { return signedEnvelope(func(e *bizcircletest.Envelope) { e.ID = "" }) },
		400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"an envelope without event_type", func() *http.Request { return signedEnvelope(func(e *bizcircletest.Envelope) { e.EventType = "" }) },
		400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"an envelope without resource", func() *http.Request {
		return platform.Signed([]byte(`{"id":"1","event_type":"MALL_TRANSACTION.SUCCESS"}`)).Request("/notify")
	}, 400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"a resource without ciphertext", func() *http.Request {
		return signedEnvelope(func(e *bizcircletest.Envelope) { e.Resource.Ciphertext = "" })
	}, 400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"a resource without nonce", func() *http.Request { return signedEnvelope(func(e *bizcircletest.Envelope) { e.Resource.Nonce = "" }) },
		400, "malformed notification envelope", bizcircle.ErrEnvelope},
	{"an unsupported algorithm", func() *http.Request {
		return signedEnvelope(func(e *bizcircletest.Envelope) { e.Resource.Algorithm = "AEAD_SM4_GCM" })
	}, 400, "unsupported resource algorithm", bizcircle.ErrAlgorithm},
	// 400: decryption
	{"a ciphertext that is not base64", func() *http.Request {
		return signedEnvelope(func(e *bizcircletest.Envelope) { e.Resource.Ciphertext = "***" })
	}, 400, "resource decryption failed", bizcircle.ErrDecrypt},
	{"a nonce of the wrong length", func() *http.Request {
		return signedEnvelope(func(e *bizcircletest.Envelope) { e.Resource.Nonce += "x" })
	}, 400, "resource decryption failed", bizcircle.ErrDecrypt},
	{"a ciphertext shorter than the tag", func() *http.Request {
		return signedEnvelope(func(e *bizcircletest.Envelope) { e.Resource.Ciphertext = "AAAA" })
	}, 400, "resource decryption failed", bizcircle.ErrDecrypt},
	{"a changed associated_data", func() *http.Request {
		return signedEnvelope(func(e *bizcircletest.Envelope) { e.Resource.AssociatedData = "mall_refund" })
	}, 400, "resource decryption failed", bizcircle.ErrDecrypt},
	{"a resource encrypted with another APIv3 key", func() *http.Request {
		return signedEnvelope(func(e *bizcircletest.Envelope) {
			e.Resource.Ciphertext, e.Resource.Nonce = otherKey.Encrypt([]byte(`{"transaction_id":"1"}`), e.Resource.AssociatedData)
		})
	}, 400, "resource decryption failed", bizcircle.ErrDecrypt},
	// 400: plaintext
	{"a plaintext that is not JSON", func() *http.Request { return signedPlaintext(bizcircle.EventPayment, "amount=200") },
		400, "plaintext is not the event's JSON", bizcircle.ErrPlaintext},
	{"a payment without transaction_id", func() *http.Request { return signedPlaintext(bizcircle.EventPayment, `{"amount":200}`) },
		400, "plaintext is not the event's JSON", bizcircle.ErrPlaintext},
	{"a payment whose plaintext is null", func() *http.Request { return signedPlaintext(bizcircle.EventPayment, `null`) },
		400, "plaintext is not the event's JSON", bizcircle.ErrPlaintext},
	{"a payment with a string amount", func() *http.Request {
		return signedPlaintext(bizcircle.EventPayment, `{"transaction_id":"1","amount":"200"}`)
	}, 400, "plaintext is not the event's JSON", bizcircle.ErrPlaintext},
	{"a payment that is a JSON array", func() *http.Request {
		return signedPlaintext(bizcircle.EventPayment, `[{"transaction_id":"1"}]`)
	}, 400, "plaintext is not the event's JSON", bizcircle.ErrPlaintext},
	{"a refund without refund_id", func() *http.Request {
		return signedPlaintext(bizcircle.EventRefund, `{"transaction_id":"1","refund_amount":100}`)
	}, 400, "plaintext is not the event's JSON", bizcircle.ErrPlaintext},
	{"an authorization that is a JSON string", func() *http.Request { return signedPlaintext(bizcircle.EventAuthorization, `"ok"`) },
		400, "plaintext is not the event's JSON", bizcircle.ErrPlaintext},
}

func TestBadInput(t *testing.T) {
	var logs logBuffer
	for _, tc := range badRequests {
		t.Run(tc.name, func(t *testing.T) {
			cb := &recorder{}
			var observed []bizcircle.Observation
			h := newEndpoint(t, platform, cb, bizcircle.WithLogger(logs.logger()),
				bizcircle.WithObserver(func(o bizcircle.Observation) { observed = append(observed, o) }))
			w := serve(h, tc.request())

			if w.Code != tc.status {
				t.Errorf("status = %d, want %d", w.Code, tc.status)
			}
			if got, want := w.Body.String(), failBody(tc.message); got != want {
				t.Errorf("body = %s, want %s", got, want)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if n := cb.calls.Load(); n != 0 {
				t.Errorf("%d callbacks ran, want none", n)
			}
			if len(observed) == 0 || observed[len(observed)-1].Outcome != bizcircle.OutcomeRejected {
				t.Fatalf("observed %+v, want a last outcome of rejected", observed)
			}
			if err := observed[len(observed)-1].Err; !errors.Is(err, tc.err) {
				t.Errorf("error = %v, want errors.Is %v", err, tc.err)
			}
		})
	}
	for _, secret := range []string{platform.APIv3Key, "oUpF8uMuAJ2pxb1Q9zNjWUHsd", "amount=200"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain the secret or plaintext %q", secret)
		}
	}
}

func TestToleranceBoundaryIsAccepted(t *testing.T) {
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		cb := &recorder{}
		w := serve(newEndpoint(t, platform, cb), withTimestamp(epoch.Add(skew))())
		if w.Code != http.StatusNoContent || cb.calls.Load() != 1 {
			t.Errorf("skew %v: status %d, %d callbacks; want 204 and 1", skew, w.Code, cb.calls.Load())
		}
	}
}

func TestWithToleranceWidensTheWindow(t *testing.T) {
	cb := &recorder{}
	h := newEndpoint(t, platform, cb, bizcircle.WithTolerance(time.Hour))
	if w := serve(h, withTimestamp(epoch.Add(-50*time.Minute))()); w.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204", w.Code)
	}
}

func TestWithMaxBodyBytes(t *testing.T) {
	m := platform.Payment(bizcircletest.SamplePayment())
	h := newEndpoint(t, platform, &recorder{}, bizcircle.WithMaxBodyBytes(int64(len(m.Body)-1)))
	if w := serve(h, m.Request("/notify")); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", w.Code)
	}
	h = newEndpoint(t, platform, &recorder{}, bizcircle.WithMaxBodyBytes(int64(len(m.Body))))
	if w := serve(h, m.Request("/notify")); w.Code != http.StatusNoContent {
		t.Fatalf("status = %d, want 204 at exactly the limit", w.Code)
	}
}

func TestConstructorErrors(t *testing.T) {
	v := platform.Verifier()
	tests := []struct {
		name     string
		key      string
		verifier bool
		opts     []bizcircle.Option
	}{
		{"a 31-byte key", platform.APIv3Key[:31], true, nil},
		{"a 33-byte key", platform.APIv3Key + "x", true, nil},
		{"an empty key", "", true, nil},
		{"a nil verifier", platform.APIv3Key, false, nil},
		{"a nil clock", platform.APIv3Key, true, []bizcircle.Option{bizcircle.WithClock(nil)}},
		{"a zero tolerance", platform.APIv3Key, true, []bizcircle.Option{bizcircle.WithTolerance(0)}},
		{"a negative body limit", platform.APIv3Key, true, []bizcircle.Option{bizcircle.WithMaxBodyBytes(-1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var verifier = v
			if !tc.verifier {
				verifier = nil
			}
			if _, err := bizcircle.VerifyAndDecrypt(tc.key, verifier, tc.opts...); err == nil {
				t.Error("VerifyAndDecrypt: no error")
			}
			if _, err := bizcircle.New(tc.key, verifier, &recorder{}, tc.opts...); err == nil {
				t.Error("New: no error")
			} else if strings.Contains(err.Error(), platform.APIv3Key[:31]) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
	if _, err := bizcircle.New(platform.APIv3Key, v, nil); err == nil {
		t.Error("New with nil Callbacks: no error")
	}
}
