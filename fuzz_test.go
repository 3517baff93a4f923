package bizcircle_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// acceptAll verifies every signature, so fuzzing reaches the envelope,
// decryption and plaintext code behind the signature check.
type acceptAll struct{}

func (acceptAll) Verify(context.Context, string, string, string) error { return nil }
func (acceptAll) GetSerial(context.Context) (string, error)            { return "", nil }

// rejections are the errors a Decode or Dispatch failure must wrap.
var rejections = []error{
	bizcircle.ErrMethod, bizcircle.ErrBodyTooLarge, bizcircle.ErrHeader, bizcircle.ErrTimestamp,
	bizcircle.ErrSignature, bizcircle.ErrEnvelope, bizcircle.ErrAlgorithm, bizcircle.ErrDecrypt,
	bizcircle.ErrPlaintext,
}

func checkTyped(t *testing.T, err error) {
	t.Helper()
	for _, want := range rejections {
		if errors.Is(err, want) {
			return
		}
	}
	t.Fatalf("error %v wraps none of the package's rejection errors", err)
}

// FuzzDecodeHeaders feeds arbitrary Wechatpay-* headers to the real verifier.
func FuzzDecodeHeaders(f *testing.F) {
	m := platform.Payment(bizcircletest.SamplePayment())
	h := m.Header
	f.Add(h.Get(bizcircle.HeaderTimestamp), h.Get(bizcircle.HeaderNonce), h.Get(bizcircle.HeaderSignature), h.Get(bizcircle.HeaderSerial), bizcircle.SignatureType)
	f.Add("-9223372036854775808", "", "WECHATPAY/SIGNTEST/x", "PUB_KEY_ID_1", "")
	f.Add(" 1764208800 ", "n", "====", "0123456789ABCDEF", "WECHATPAY2-SM2-WITH-SM3")
	dec, err := bizcircle.NewDecoder(platform.APIv3Key, platform.Verifier(), bizcircle.WithClock(fixedClock), bizcircle.WithLogger(discardLogger))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ts, nonce, sig, serial, sigType string) {
		hdr := http.Header{}
		hdr.Set(bizcircle.HeaderTimestamp, ts)
		hdr.Set(bizcircle.HeaderNonce, nonce)
		hdr.Set(bizcircle.HeaderSignature, sig)
		hdr.Set(bizcircle.HeaderSerial, serial)
		hdr.Set(bizcircle.HeaderSignatureType, sigType)
		n, err := dec.Decode(context.Background(), hdr, m.Body)
		if err == nil {
			// Only the genuine headers verify.
			if sig != h.Get(bizcircle.HeaderSignature) || n.ID != m.ID {
				t.Fatalf("accepted forged headers: %q %q %q %q", ts, nonce, sig, serial)
			}
			return
		}
		checkTyped(t, err)
	})
}

// FuzzEnvelope feeds arbitrary bodies past the signature check to the
// envelope parser and decryption.
func FuzzEnvelope(f *testing.F) {
	f.Add(platform.Payment(bizcircletest.SamplePayment()).Body)
	f.Add([]byte(`{"id":"1","event_type":"X","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAA","nonce":"123456789012"}}`))
	f.Add([]byte(`{"resource":null}`))
	f.Add([]byte(`[]`))
	dec, err := bizcircle.NewDecoder(platform.APIv3Key, acceptAll{}, bizcircle.WithClock(fixedClock), bizcircle.WithLogger(discardLogger))
	if err != nil {
		f.Fatal(err)
	}
	hdr := platform.Signed(nil).Header
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := dec.Decode(context.Background(), hdr, body)
		if err != nil {
			checkTyped(t, err)
			return
		}
		if n.ID == "" || n.EventType == "" {
			t.Fatalf("decoded a notification without ID or event type: %+v", n)
		}
	})
}

// FuzzPlaintext encrypts arbitrary plaintexts as each event type and sends
// them through the whole endpoint.
func FuzzPlaintext(f *testing.F) {
	f.Add(bizcircle.EventPayment, []byte(`{"transaction_id":"1","amount":200,"time_end":"2020-05-20T13:29:35.120+08:00"}`))
	f.Add(bizcircle.EventRefund, []byte(`{"refund_id":"1","refund_time":"2020-05-20T13:29:35+08:00","x":[{}]}`))
	f.Add(bizcircle.EventAuthorization, []byte(`{"openid":"o","auth_type":"REGISTERED_MODE"}`))
	f.Add(bizcircle.EventPayment, []byte(`{"transaction_id":"1","amount":1e400}`))
	cb := &recorder{}
	h := newEndpoint(f, platform, cb, bizcircle.WithLogger(discardLogger))
	f.Fuzz(func(t *testing.T, eventType string, plaintext []byte) {
		before := cb.calls.Load()
		m := platform.Notify(eventType, "mall_transaction", "", plaintext)
		w := serve(h, m.Request("/notify"))
		ran := cb.calls.Load() - before
		switch w.Code {
		case http.StatusNoContent:
		case http.StatusBadRequest:
			if ran != 0 {
				t.Fatalf("400 after %d callbacks", ran)
			}
		default:
			t.Fatalf("status %d for %q %q", w.Code, eventType, plaintext)
		}
	})
}

// FuzzEndpoint sends arbitrary requests, signed or not, through the whole
// middleware and handler: no input panics, every answer is 204 or a
// well-formed failure, and no callback runs for a failure.
func FuzzEndpoint(f *testing.F) {
	good := platform.Payment(bizcircletest.SamplePayment())
	f.Add("POST", headerText(good.Header), good.Body, false)
	f.Add("POST", headerText(good.Header), good.Body, true)
	f.Add("GET", "", []byte(nil), false)
	f.Add("POST", "Wechatpay-Timestamp: 1\r\n", []byte("{}"), true)
	f.Add("POST", "Transfer-Encoding: chunked\r\n", bytes.Repeat([]byte("x"), 70000), false)
	cb := &recorder{}
	h := newEndpoint(f, platform, cb, bizcircle.WithLogger(discardLogger))
	f.Fuzz(func(t *testing.T, method, header string, body []byte, sign bool) {
		if !validMethod(method) {
			return
		}
		r := httptest.NewRequest(method, "/notify", bytes.NewReader(body))
		for _, line := range strings.Split(header, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				r.Header.Add(k, strings.TrimSpace(v))
			}
		}
		if sign && len(body) < 4096 {
			s := platform.Signed(body)
			for k, v := range s.Header {
				r.Header[k] = v
			}
		}
		before := cb.calls.Load()
		w := serve(h, r)
		ran := cb.calls.Load() - before
		if w.Code == http.StatusNoContent {
			return
		}
		if ran != 0 {
			t.Fatalf("status %d after %d callbacks", w.Code, ran)
		}
		if !bytes.HasPrefix(w.Body.Bytes(), []byte(`{"code":"FAIL","message":"`)) {
			t.Fatalf("status %d with body %q", w.Code, w.Body)
		}
	})
}

func headerText(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	return b.String()
}

// validMethod reports whether httptest.NewRequest accepts method.
func validMethod(method string) bool {
	if method == "" {
		return false
	}
	for _, c := range method {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}
