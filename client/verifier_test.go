package client_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
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
	h, err := bizcircle.New(apiV3Key, v, bizcircle.CallbackFuncs{}, bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
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
	v := newVerifier(t, srv, client.WithRefetchInterval(time.Minute), client.WithVerifierClock(clk.now))
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
		{"nil clock", key, false, []client.VerifierOption{client.WithVerifierClock(nil)}},
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
