package bizcircle_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core/notify"
)

// alwaysRun is a Deduper that runs every time, so each iteration of the
// benchmark dispatches a fresh event.
type alwaysRun struct{}

func (alwaysRun) Do(ctx context.Context, _ string, fn func(context.Context) error) (bool, error) {
	return true, fn(ctx)
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkPipeline compares, in one run, the verify+decrypt+dispatch of one
// payment through the bizcircle handler, the same work through wechatpay-go's
// notify.Handler, and the bare work: RSA verify, envelope parse, AES-GCM
// open and plaintext parse.
func BenchmarkPipeline(b *testing.B) {
	wechat := bizcircletest.NewPlatform() // signs at time.Now, as wechatpay-go checks it
	m := wechat.Payment(bizcircletest.SamplePayment())
	var sink int64

	// One request is reused, as a server reuses its buffers; both
	// handlers get the same.
	r := m.Request("/notify")
	rewind := func() { r.Body = io.NopCloser(bytes.NewReader(m.Body)) }

	through := func(d bizcircle.Deduper) func(b *testing.B) {
		return servePayment(wechat, m, &sink, bizcircle.WithDeduper(d), bizcircle.WithLogger(discardLogger))
	}
	b.Run("bizcircle", through(alwaysRun{}))
	// Through the real MemoryDeduper: a completed key that expires at once
	// makes every iteration a fresh event.
	b.Run("bizcircle-memory", through(memory(b, bizcircle.WithTTL(time.Nanosecond))))
	b.Run("bizcircle-duplicate", through(memory(b)))

	b.Run("wechatpay-go", func(b *testing.B) {
		h, err := notify.NewRSANotifyHandler(wechat.APIv3Key, wechat.Verifier())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			rewind()
			var e bizcircle.PaymentEvent
			if _, err := h.ParseNotifyRequest(context.Background(), r, &e); err != nil {
				b.Fatal(err)
			}
			sink += e.Amount
		}
	})

	b.Run("bare", func(b *testing.B) {
		block, _ := aes.NewCipher([]byte(wechat.APIv3Key))
		aead, _ := cipher.NewGCM(block)
		pub := &wechat.Key.PublicKey
		ts, nonce := m.Header.Get(bizcircle.HeaderTimestamp), m.Header.Get(bizcircle.HeaderNonce)
		sig := m.Header.Get(bizcircle.HeaderSignature)
		b.ReportAllocs()
		for b.Loop() {
			sigBytes, _ := base64.StdEncoding.DecodeString(sig)
			hashed := sha256.Sum256([]byte(ts + "\n" + nonce + "\n" + string(m.Body) + "\n"))
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, hashed[:], sigBytes); err != nil {
				b.Fatal(err)
			}
			var env bizcircletest.Envelope
			if err := json.Unmarshal(m.Body, &env); err != nil {
				b.Fatal(err)
			}
			sealed, _ := base64.StdEncoding.DecodeString(env.Resource.Ciphertext)
			plaintext, err := aead.Open(sealed[:0], []byte(env.Resource.Nonce), sealed, []byte(env.Resource.AssociatedData))
			if err != nil {
				b.Fatal(err)
			}
			var e bizcircle.PaymentEvent
			if err := json.Unmarshal(plaintext, &e); err != nil {
				b.Fatal(err)
			}
			sink += e.Amount
		}
	})
	_ = sink
}

// servePayment serves m through the whole endpoint built with opts, as a
// server does: one request reused, the body rewound.
func servePayment(wechat *bizcircletest.Platform, m *bizcircletest.Message, sink *int64, opts ...bizcircle.Option) func(b *testing.B) {
	return func(b *testing.B) {
		h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{
			Payment: func(_ context.Context, e *bizcircle.PaymentEvent) error { *sink += e.Amount; return nil },
		}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		r := m.Request("/notify")
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			r.Body = io.NopCloser(bytes.NewReader(m.Body))
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusNoContent {
				b.Fatalf("status %d", w.code)
			}
		}
	}
}

// BenchmarkDefaultLogger compares a fresh notification with a duplicate
// under the default configuration (slog.Default, Info, to stderr):
// duplicates are normal WeChat Pay traffic and must cost no more.
func BenchmarkDefaultLogger(b *testing.B) {
	wechat := bizcircletest.NewPlatform()
	m := wechat.Payment(bizcircletest.SamplePayment())
	var sink int64
	b.Run("fresh", servePayment(wechat, m, &sink, bizcircle.WithTTL(time.Nanosecond)))
	b.Run("duplicate", servePayment(wechat, m, &sink))
}

// BenchmarkRejectUnsigned is the cost of refusing a forged notification.
func BenchmarkRejectUnsigned(b *testing.B) {
	wechat := bizcircletest.NewPlatform()
	m := wechat.Payment(bizcircletest.SamplePayment())
	m.Header.Set(bizcircle.HeaderSignature, base64.StdEncoding.EncodeToString(make([]byte, 256)))
	h, _ := bizcircle.New(wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }},
		bizcircle.WithLogger(discardLogger), bizcircle.WithClock(func() time.Time { return time.Now() }))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, m.Request("/notify"))
	}
}
