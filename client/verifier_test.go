package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/downloader"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

// clock is a settable clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock                         { c := new(clock); c.ns.Store(time.Now().UnixNano()); return c }
func (c *clock) now() time.Time                { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration)       { c.ns.Add(int64(d)) }
func downloads(s *bizcircletest.APIServer) int { return len(s.CallsTo(bizcircletest.PathCertificates)) }

// endpoint is the notification endpoint a mall runs, verifying with v.
func endpoint(t *testing.T, apiV3Key string, v auth.Verifier) http.Handler {
	t.Helper()
	h, err := bizcircle.New(apiV3Key, v, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}, bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func deliver(h http.Handler, m *bizcircletest.Message) int {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, m.Request("/notify"))
	return w.Code
}

func newVerifier(t *testing.T, srv *bizcircletest.APIServer, opts ...client.VerifierOption) *client.PlatformVerifier {
	t.Helper()
	v, err := client.NewPlatformVerifier(context.Background(), srv.NewClient(option.WithoutValidator()), srv.Platform().APIv3Key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// TestPlatformVerifier_rotation plays a platform certificate rotation end to
// end: WeChat Pay starts signing notifications with a new certificate.
// wechatpay-go's downloader, refreshed every 24 hours, rejects them until
// its next refresh; the PlatformVerifier downloads the certificates again at
// the first unknown serial and accepts them.
func TestPlatformVerifier_rotation(t *testing.T) {
	old := bizcircletest.NewCertificatePlatform()
	srv := bizcircletest.NewAPIServer(old, sharedMerchant())
	defer srv.Close()
	ctx := context.Background()

	// wechatpay-go's own setup: a downloader manager refreshing every 24h.
	mgr := downloader.NewCertificateDownloaderMgr(ctx)
	defer mgr.Stop()
	mchID := sharedMerchant().MchID
	if err := mgr.RegisterDownloaderWithClient(ctx, srv.NewClient(option.WithoutValidator()), mchID, old.APIv3Key); err != nil {
		t.Fatal(err)
	}
	plain := endpoint(t, old.APIv3Key, verifiers.NewSHA256WithRSAVerifier(mgr.GetCertificateVisitor(mchID)))
	ours := endpoint(t, old.APIv3Key, newVerifier(t, srv))
	if n := downloads(srv); n != 2 {
		t.Fatalf("%d downloads at start, want 2", n)
	}

	before := old.Payment(bizcircletest.SamplePayment())
	if a, b := deliver(plain, before), deliver(ours, before); a != http.StatusNoContent || b != http.StatusNoContent {
		t.Fatalf("before the rotation: %d and %d, want 204", a, b)
	}

	rotated := srv.Rotate()
	after := rotated.Payment(bizcircletest.SamplePayment())
	if got := deliver(plain, after); got != http.StatusUnauthorized {
		t.Errorf("wechatpay-go's 24h downloader answered %d, want 401", got)
	}
	if got := deliver(ours, after); got != http.StatusNoContent {
		t.Errorf("PlatformVerifier answered %d, want 204", got)
	}
	if n := downloads(srv); n != 3 {
		t.Errorf("%d downloads, want 3 (one refetch)", n)
	}

	// Both certificates are now known: no more downloads.
	for _, p := range []*bizcircletest.Platform{rotated, old} {
		if got := deliver(ours, p.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
			t.Errorf("answered %d, want 204", got)
		}
	}
	if n := downloads(srv); n != 3 {
		t.Errorf("%d downloads, want still 3", n)
	}
}

// TestPlatformVerifier_singleFlight: notifications by a new certificate
// arriving together share one download.
func TestPlatformVerifier_singleFlight(t *testing.T) {
	srv := bizcircletest.NewAPIServer(bizcircletest.NewCertificatePlatform(), sharedMerchant())
	defer srv.Close()
	h := endpoint(t, srv.Platform().APIv3Key, newVerifier(t, srv))
	rotated := srv.Rotate()
	const n = 20
	msgs := make([]*bizcircletest.Message, n)
	for i := range msgs {
		msgs[i] = rotated.Payment(bizcircletest.SamplePayment())
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() { codes[i] = deliver(h, msgs[i]) })
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusNoContent {
			t.Errorf("notification %d answered %d", i, code)
		}
	}
	if got := downloads(srv); got != 2 {
		t.Errorf("%d downloads, want 2 (start and one refetch)", got)
	}
}

func randomSerial() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// TestPlatformVerifier_rateLimited: forged serials cost at most one
// download per refetch interval.
func TestPlatformVerifier_rateLimited(t *testing.T) {
	srv := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	defer srv.Close()
	clk := newClock()
	v := newVerifier(t, srv, client.WithRefetchInterval(time.Minute), client.WithClock(clk.now))
	ctx := context.Background()
	verify := func() error { return v.Verify(ctx, randomSerial(), "message", "c2lnbmF0dXJl") }

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := verify(); !errors.Is(err, client.ErrUnknownSerial) {
				t.Errorf("err = %v, want ErrUnknownSerial", err)
			}
		})
	}
	wg.Wait()
	if n := downloads(srv); n != 2 {
		t.Errorf("%d downloads, want 2 (start and one refetch)", n)
	}
	clk.advance(59 * time.Second)
	if err := verify(); !errors.Is(err, client.ErrUnknownSerial) || !strings.Contains(err.Error(), "refetch interval") {
		t.Errorf("err = %v", err)
	}
	if n := downloads(srv); n != 2 {
		t.Errorf("%d downloads within the interval, want 2", n)
	}
	clk.advance(time.Second)
	_ = verify()
	if n := downloads(srv); n != 3 {
		t.Errorf("%d downloads after the interval, want 3", n)
	}
}

// TestPlatformVerifier_migration: during the move from certificates to a
// public key, notifications signed either way are accepted, chosen by
// serial, and an unknown public key ID triggers no download.
func TestPlatformVerifier_migration(t *testing.T) {
	cert := sharedPlatform()
	srv := bizcircletest.NewAPIServer(cert, sharedMerchant())
	defer srv.Close()
	pub := bizcircletest.NewPlatform()
	pub.APIv3Key = cert.APIv3Key
	v := newVerifier(t, srv, client.WithPublicKey(pub.Serial, &pub.Key.PublicKey))
	h := endpoint(t, cert.APIv3Key, v)
	for _, p := range []*bizcircletest.Platform{cert, pub} {
		if got := deliver(h, p.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
			t.Errorf("%s: answered %d, want 204", p.Serial[:11], got)
		}
	}
	if s, _ := v.GetSerial(context.Background()); s != pub.Serial {
		t.Errorf("GetSerial = %s, want the public key ID", s)
	}

	stranger := bizcircletest.NewPlatform()
	stranger.APIv3Key = cert.APIv3Key
	if got := deliver(h, stranger.Payment(bizcircletest.SamplePayment())); got != http.StatusUnauthorized {
		t.Errorf("unknown public key: answered %d, want 401", got)
	}
	err := v.Verify(context.Background(), stranger.Serial, "m", "c2ln")
	if !errors.Is(err, client.ErrUnknownSerial) {
		t.Errorf("err = %v", err)
	}
	if n := downloads(srv); n != 1 {
		t.Errorf("%d downloads, want 1: public key IDs never trigger one", n)
	}
}

func TestPlatformVerifier_publicKeyOnly(t *testing.T) {
	pub := bizcircletest.NewPlatform()
	v, err := client.NewPlatformVerifier(context.Background(), nil, "", client.WithPublicKey(pub.Serial, &pub.Key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	h := endpoint(t, pub.APIv3Key, v)
	if got := deliver(h, pub.Payment(bizcircletest.SamplePayment())); got != http.StatusNoContent {
		t.Errorf("answered %d, want 204", got)
	}
	if err := v.Verify(context.Background(), randomSerial(), "m", "c2ln"); !errors.Is(err, client.ErrUnknownSerial) {
		t.Errorf("certificate serial: err = %v", err)
	}
}

// TestPlatformVerifier_badSignature: a known serial with a wrong signature
// fails without a download.
func TestPlatformVerifier_badSignature(t *testing.T) {
	srv := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	defer srv.Close()
	v := newVerifier(t, srv)
	h := endpoint(t, srv.Platform().APIv3Key, v)
	m := srv.Platform().Payment(bizcircletest.SamplePayment())
	m.Body = append(m.Body[:len(m.Body)-1], ' ', '}')
	if got := deliver(h, m); got != http.StatusUnauthorized {
		t.Errorf("answered %d, want 401", got)
	}
	if n := downloads(srv); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

// TestPlatformVerifier_apiAnswers: the verifier also validates API answers,
// and a client using it keeps working across a rotation.
func TestPlatformVerifier_apiAnswers(t *testing.T) {
	srv := bizcircletest.NewAPIServer(bizcircletest.NewCertificatePlatform(), sharedMerchant())
	defer srv.Close()
	v := newVerifier(t, srv)
	c, err := client.New(srv.NewClient(option.WithVerifier(v)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.SyncPoints(ctx, validPoints()); err != nil {
		t.Fatal(err)
	}
	srv.Rotate()
	if _, err := c.QueryAuthorization(ctx, validAuthorization()); err != nil {
		t.Fatal(err)
	}
}

func TestNewPlatformVerifier_errors(t *testing.T) {
	srv := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	defer srv.Close()
	api := srv.NewClient(option.WithoutValidator())
	key := sharedPlatform().APIv3Key
	pub := &sharedPlatform().Key.PublicKey
	tests := []struct {
		name string
		key  string
		nil  bool
		opts []client.VerifierOption
	}{
		{"no client and no public key", key, true, nil},
		{"wrong APIv3 key", bizcircletest.RandomAPIv3Key(), false, nil},
		{"short APIv3 key", "short", false, nil},
		{"empty public key ID", key, false, []client.VerifierOption{client.WithPublicKey("", pub)}},
		{"nil public key", key, false, []client.VerifierOption{client.WithPublicKey("PUB_KEY_ID_1", nil)}},
		{"zero refetch interval", key, false, []client.VerifierOption{client.WithRefetchInterval(0)}},
		{"zero refetch timeout", key, false, []client.VerifierOption{client.WithRefetchTimeout(0)}},
		{"zero refresh interval", key, false, []client.VerifierOption{client.WithRefreshInterval(0)}},
		{"negative refresh interval", key, false, []client.VerifierOption{client.WithRefreshInterval(-time.Hour)}},
		{"nil clock", key, false, []client.VerifierOption{client.WithClock(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := api
			if tt.nil {
				a = nil
			}
			if v, err := client.NewPlatformVerifier(context.Background(), a, tt.key, tt.opts...); err == nil || v != nil {
				t.Errorf("got %v, %v; want an error", v, err)
			}
		})
	}
}

// secondPlatform is a second certificate under the shared platform's APIv3
// key: the certificate WeChat Pay rotates to.
var secondPlatform = sync.OnceValue(func() *bizcircletest.Platform {
	p := bizcircletest.NewCertificatePlatform()
	p.APIv3Key = sharedPlatform().APIv3Key
	return p
})

// A certServer answers GET /v3/certificates as WeChat Pay does, listing
// the certificates of the platforms it is told to serve: a test retires a
// certificate by leaving it out. It is also the client's http.RoundTripper
// and serves in process, without a socket, so a testing/synctest bubble
// holds the whole download and its fake clock runs a 24-hour schedule at
// once.
type certServer struct {
	mu        sync.Mutex
	platforms []*bizcircletest.Platform
	bad       []badAnswer   // answers for the next downloads
	hold      chan struct{} // when set, downloads wait until it is closed
	downloads int
}

// A badAnswer is a signed answer other than the certificate list.
type badAnswer struct {
	status int
	body   string
}

var (
	answer500 = badAnswer{http.StatusInternalServerError, `{"code":"SYSTEM_ERROR","message":"系统错误"}`}
	// answerPanics lacks encrypt_certificate, which wechatpay-go's
	// downloader dereferences without a check.
	answerPanics = badAnswer{http.StatusOK, `{"data":[{"serial_no":"5157F09EFDC096DE15EBE81A47057A7232F1B8E1"}]}`}
)

func newCertServer(p ...*bizcircletest.Platform) *certServer { return &certServer{platforms: p} }

// serve sets the certificates listed from the next download on.
func (s *certServer) serve(p ...*bizcircletest.Platform) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.platforms = p
}

// failNext makes the next downloads get these answers, in order.
func (s *certServer) failNext(a ...badAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bad = append(s.bad, a...)
}

func (s *certServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads
}

// RoundTrip serves r in process, giving up when r's context ends as a
// network client would.
func (s *certServer) RoundTrip(r *http.Request) (*http.Response, error) {
	res := make(chan *http.Response, 1)
	go func() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		res <- w.Result()
	}()
	select {
	case resp := <-res:
		return resp, nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

func (s *certServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.downloads++
	platforms, hold := slices.Clone(s.platforms), s.hold
	var bad *badAnswer
	if len(s.bad) > 0 {
		bad = &s.bad[0]
		s.bad = s.bad[1:]
	}
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}

	status, body := http.StatusOK, []byte(nil)
	if bad != nil {
		status, body = bad.status, []byte(bad.body)
	} else {
		type encrypted struct {
			Algorithm      string `json:"algorithm"`
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		}
		type certificate struct {
			SerialNo           string    `json:"serial_no"`
			EffectiveTime      time.Time `json:"effective_time"`
			ExpireTime         time.Time `json:"expire_time"`
			EncryptCertificate encrypted `json:"encrypt_certificate"`
		}
		var list struct {
			Data []certificate `json:"data"`
		}
		for _, p := range platforms {
			ct, nonce := p.Encrypt([]byte(p.CertificatePEM()), "certificate")
			list.Data = append(list.Data, certificate{p.Serial, p.Certificate.NotBefore, p.Certificate.NotAfter,
				encrypted{"AEAD_AES_256_GCM", nonce, "certificate", ct}})
		}
		body, _ = json.Marshal(list)
	}
	// Signed by the certificate the client names, else the newest, as
	// WeChat Pay does while certificates rotate.
	signer := platforms[len(platforms)-1]
	for _, p := range platforms {
		if p.Serial == r.Header.Get("Wechatpay-Serial") {
			signer = p
		}
	}
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), randomSerial()[:16]
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Request-ID", "test")
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Serial", signer.Serial)
	h.Set("Wechatpay-Signature", signer.Sign(ts, nonce, body))
	w.WriteHeader(status)
	w.Write(body)
}

// newBubbleVerifier returns a PlatformVerifier downloading from s, closed
// when the test ends.
func newBubbleVerifier(t *testing.T, s *certServer, opts ...client.VerifierOption) *client.PlatformVerifier {
	t.Helper()
	api, err := core.NewClient(context.Background(), sharedMerchant().Credential(),
		option.WithoutValidator(), option.WithHTTPClient(&http.Client{Transport: s}))
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.NewPlatformVerifier(context.Background(), api, sharedPlatform().APIv3Key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// verifyBy verifies a message p signed.
func verifyBy(v *client.PlatformVerifier, p *bizcircletest.Platform) error {
	const ts, nonce, body = "1600000000", "n0nce", `{"id":"1"}`
	return v.Verify(context.Background(), p.Serial, ts+"\n"+nonce+"\n"+body+"\n", p.Sign(ts, nonce, []byte(body)))
}

// TestPlatformVerifier_scheduledRefresh: the certificates are downloaded
// every refresh interval and replaced by the list downloaded, so a
// certificate WeChat Pay has retired stops verifying after the next
// download, not at the first unknown serial.
func TestPlatformVerifier_scheduledRefresh(t *testing.T) {
	old, next := sharedPlatform(), secondPlatform()
	synctest.Test(t, func(t *testing.T) {
		s := newCertServer(old)
		v := newBubbleVerifier(t, s)
		wantDownloads := func(n int) {
			t.Helper()
			synctest.Wait()
			if got := s.count(); got != n {
				t.Fatalf("%d downloads after %v, want %d", got, time.Since(bubbleStart), n)
			}
		}

		s.serve(old, next) // WeChat Pay lists a new certificate beside the old
		time.Sleep(client.DefaultRefreshInterval - time.Second)
		wantDownloads(1)
		time.Sleep(time.Second)
		wantDownloads(2)
		for _, p := range []*bizcircletest.Platform{old, next} {
			if err := verifyBy(v, p); err != nil {
				t.Errorf("%s…: %v", p.Serial[:8], err)
			}
		}
		wantDownloads(2) // both were downloaded on schedule: no refetch

		s.serve(next) // and retires the old one
		time.Sleep(client.DefaultRefreshInterval)
		wantDownloads(3)
		if err := verifyBy(v, old); !errors.Is(err, client.ErrUnknownSerial) {
			t.Errorf("the retired certificate: err = %v, want ErrUnknownSerial", err)
		}
		if err := verifyBy(v, next); err != nil {
			t.Errorf("the new certificate: %v", err)
		}
	})
}

// bubbleStart is when every synctest bubble's clock starts.
var bubbleStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TestPlatformVerifier_failedRefresh: a scheduled download that fails
// keeps the certificates held, is logged, and is tried again after the
// refetch interval, doubling while it fails; a panic in wechatpay-go's
// downloader does not crash the program. After a success the schedule is
// daily again.
func TestPlatformVerifier_failedRefresh(t *testing.T) {
	old, next := sharedPlatform(), secondPlatform()
	tests := []struct {
		name   string
		bad    []badAnswer
		logged string
	}{
		{"a 500 answer", []badAnswer{answer500}, "WeChat Pay answered 500 SYSTEM_ERROR: 系统错误"},
		{"an answer that makes the downloader panic", []badAnswer{answerPanics}, "panicked"},
		{"three failures in a row", []badAnswer{answer500, answerPanics, answer500}, "failures=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs lockedBuffer
				s := newCertServer(old)
				v := newBubbleVerifier(t, s, client.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
				wantDownloads := func(n int) {
					t.Helper()
					synctest.Wait()
					if got := s.count(); got != n {
						t.Fatalf("%d downloads after %v, want %d", got, time.Since(bubbleStart), n)
					}
				}
				s.serve(old, next)
				s.failNext(tt.bad...)

				time.Sleep(client.DefaultRefreshInterval)
				wantDownloads(2)
				wait := client.DefaultRefetchInterval
				for i := 2; i <= len(tt.bad)+1; i++ {
					if err := verifyBy(v, old); err != nil {
						t.Fatalf("after %d failures the certificate held does not verify: %v", i-1, err)
					}
					time.Sleep(wait - time.Second)
					wantDownloads(i)
					time.Sleep(time.Second)
					wantDownloads(i + 1)
					wait *= 2
				}
				if err := verifyBy(v, next); err != nil {
					t.Errorf("after the retry: %v", err)
				}
				wantDownloads(len(tt.bad) + 2)
				if got := strings.Count(logs.String(), "level=WARN"); got != len(tt.bad) {
					t.Errorf("%d warnings, want %d:\n%s", got, len(tt.bad), logs.String())
				}
				if !strings.Contains(logs.String(), tt.logged) || strings.Contains(logs.String(), "Header") {
					t.Errorf("log does not say %q, or dumps the answer:\n%s", tt.logged, logs.String())
				}

				time.Sleep(client.DefaultRefreshInterval - time.Second)
				wantDownloads(len(tt.bad) + 2)
				time.Sleep(time.Second)
				wantDownloads(len(tt.bad) + 3)
			})
		})
	}
}

// TestPlatformVerifier_close: Close stops the schedule (synctest.Test fails
// when a goroutine is left behind), cancels a download under way instead of
// waiting for its timeout, and is safe to call twice. The verifier still
// verifies with the certificates it holds.
func TestPlatformVerifier_close(t *testing.T) {
	old := sharedPlatform()
	t.Run("between downloads", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newCertServer(old)
			v := newBubbleVerifier(t, s, client.WithRefreshInterval(time.Hour))
			time.Sleep(time.Hour)
			synctest.Wait()
			for range 2 {
				if err := v.Close(); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(48 * time.Hour)
			synctest.Wait()
			if n := s.count(); n != 2 {
				t.Errorf("%d downloads, want 2: the schedule went on after Close", n)
			}
			if err := verifyBy(v, old); err != nil {
				t.Error(err)
			}
		})
	})
	t.Run("during a download", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var logs lockedBuffer
			s := newCertServer(old)
			v := newBubbleVerifier(t, s, client.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			hold := make(chan struct{})
			defer close(hold)
			s.mu.Lock()
			s.hold = hold
			s.mu.Unlock()
			time.Sleep(client.DefaultRefreshInterval)
			synctest.Wait() // the download waits for hold
			start := time.Now()
			v.Close()
			if d := time.Since(start); d != 0 {
				t.Errorf("Close took %v: it waited for the download", d)
			}
			if logs.String() != "" {
				t.Errorf("Close was logged as a failure:\n%s", logs.String())
			}
		})
	})
	t.Run("public key only", func(t *testing.T) {
		pub := bizcircletest.NewPlatform()
		v, err := client.NewPlatformVerifier(context.Background(), nil, "", client.WithPublicKey(pub.Serial, &pub.Key.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(v.Close(), v.Close()); err != nil {
			t.Error(err)
		}
	})
}

// lockedBuffer is a bytes.Buffer safe for the verifier's goroutine to log to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
