package client

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/downloader"
)

// ErrUnknownSerial: a signature names a platform certificate serial or
// public key ID that the [PlatformVerifier] does not have, even after
// downloading the certificates again (or a download was not allowed yet).
var ErrUnknownSerial = errors.New("client: unknown platform certificate serial or public key ID")

// Defaults of the [PlatformVerifier] options.
const (
	// DefaultRefetchInterval is the least time between two certificate
	// downloads triggered by unknown serials: a flood of forged serials
	// costs one download a minute.
	DefaultRefetchInterval = time.Minute
	// DefaultRefetchTimeout bounds one certificate download.
	DefaultRefetchTimeout = 10 * time.Second
)

// A PlatformVerifier is a wechatpay-go auth.Verifier for WeChat Pay's
// signatures (on notifications and on API answers) that follows platform
// certificate rotations. It keeps the certificates in a wechatpay-go
// CertificateDownloader; when a signature names a serial it does not know,
// it downloads them again before failing, so a new certificate is accepted
// at once instead of after wechatpay-go's 24-hour refresh. Downloads are
// single-flight (concurrent verifications wait for the one download) and
// rate-limited by [WithRefetchInterval].
//
// With [WithPublicKey] it also verifies signatures by a WeChat Pay public
// key (PUB_KEY_ID_…), chosen by serial, as wechatpay-go's
// SHA256WithRSACombinedVerifier does, for merchants migrating from
// certificates to public keys.
//
// Use it with bizcircle.VerifyAndDecrypt and as the API client's verifier
// (wechatpay-go's option.WithVerifier). A PlatformVerifier is safe for
// concurrent use and starts no goroutines.
type PlatformVerifier struct {
	certs     *downloader.CertificateDownloader // nil: public key only
	certsV    *verifiers.SHA256WithRSAVerifier
	keyID     string // "" without a public key
	keyV      *verifiers.SHA256WithRSAPubkeyVerifier
	interval  time.Duration
	timeout   time.Duration
	now       func() time.Time
	mu        sync.Mutex
	inflight  *flight   // the running download, or nil
	lastStart time.Time // start of the last triggered download
}

// A flight is one download; err is set before done is closed.
type flight struct {
	done chan struct{}
	err  error
}

// A VerifierOption configures [NewPlatformVerifier].
type VerifierOption func(*verifierConfig)

type verifierConfig struct {
	keyID    string
	key      *rsa.PublicKey
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time
	err      error
}

func (c *verifierConfig) fail(msg string) {
	if c.err == nil {
		c.err = errors.New("client: " + msg)
	}
}

// WithPublicKey adds WeChat Pay's public key and its ID (PUB_KEY_ID_…):
// signatures naming keyID are verified with key, others with the platform
// certificates. An empty keyID or nil key is an error from
// [NewPlatformVerifier]. Default: certificates only.
func WithPublicKey(keyID string, key *rsa.PublicKey) VerifierOption {
	return func(c *verifierConfig) {
		if strings.TrimSpace(keyID) == "" || key == nil {
			c.fail("WithPublicKey: empty key ID or nil key")
			return
		}
		c.keyID, c.key = keyID, key
	}
}

// WithRefetchInterval sets the least time between two downloads triggered by
// unknown serials; a value not above zero is an error from
// [NewPlatformVerifier]. Default: [DefaultRefetchInterval] (1 minute).
func WithRefetchInterval(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		if d <= 0 {
			c.fail("WithRefetchInterval: interval must be positive")
			return
		}
		c.interval = d
	}
}

// WithRefetchTimeout bounds each triggered download, whatever the ctx of the
// verification that triggered it (others may be waiting for it); a value not
// above zero is an error from [NewPlatformVerifier]. Default:
// [DefaultRefetchTimeout] (10 seconds).
func WithRefetchTimeout(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		if d <= 0 {
			c.fail("WithRefetchTimeout: timeout must be positive")
			return
		}
		c.timeout = d
	}
}

// WithVerifierClock sets the clock that [WithRefetchInterval] is measured
// with; nil is an error from [NewPlatformVerifier]. Default: time.Now.
func WithVerifierClock(now func() time.Time) VerifierOption {
	return func(c *verifierConfig) {
		if now == nil {
			c.fail("WithVerifierClock: nil clock")
			return
		}
		c.now = now
	}
}

// NewPlatformVerifier downloads the platform certificates with api (GET
// /v3/certificates, decrypted with apiV3Key) and returns a PlatformVerifier
// over them. api signs as the merchant; it need not verify answers (build it
// with option.WithoutValidator), as wechatpay-go's own downloader does: the
// certificates are authenticated by the APIv3 key, and later downloads are
// verified with the certificates already held.
//
// A nil api gives a verifier for the public key alone, which needs
// [WithPublicKey]. A failed first download, an APIv3 key that is not 32
// bytes, or an invalid option is an error.
func NewPlatformVerifier(ctx context.Context, api *core.Client, apiV3Key string, opts ...VerifierOption) (*PlatformVerifier, error) {
	c := verifierConfig{interval: DefaultRefetchInterval, timeout: DefaultRefetchTimeout, now: time.Now}
	for _, opt := range opts {
		opt(&c)
	}
	if c.err != nil {
		return nil, c.err
	}
	v := &PlatformVerifier{interval: c.interval, timeout: c.timeout, now: c.now}
	if c.key != nil {
		v.keyID = c.keyID
		v.keyV = verifiers.NewSHA256WithRSAPubkeyVerifier(c.keyID, *c.key)
	}
	if api == nil {
		if v.keyV == nil {
			return nil, errors.New("client: NewPlatformVerifier needs a core.Client or WithPublicKey")
		}
		return v, nil
	}
	if len(apiV3Key) != 32 {
		return nil, fmt.Errorf("client: APIv3 key must be 32 bytes, got %d", len(apiV3Key))
	}
	d, err := downloader.NewCertificateDownloaderWithClient(ctx, api, apiV3Key)
	if err != nil {
		return nil, fmt.Errorf("client: downloading platform certificates: %w", err)
	}
	v.certs = d
	v.certsV = verifiers.NewSHA256WithRSAVerifier(d)
	return v, nil
}

// Verify verifies signature over message with the public key if serial is
// its ID, else with the platform certificate serial names. On a certificate
// serial it does not have, it downloads the certificates again (or waits for
// the download running) and tries once more; when that is not allowed yet
// by the refetch interval, or the serial is still unknown, the error wraps
// [ErrUnknownSerial].
func (v *PlatformVerifier) Verify(ctx context.Context, serial, message, signature string) error {
	if v.keyV != nil && serial == v.keyID {
		return v.keyV.Verify(ctx, serial, message, signature)
	}
	if v.certs == nil {
		return fmt.Errorf("%w: %s", ErrUnknownSerial, serial)
	}
	if _, ok := v.certs.Get(ctx, serial); !ok {
		if strings.HasPrefix(serial, "PUB_KEY_ID_") {
			// A public key is never among the certificates: don't download.
			return fmt.Errorf("%w: %s", ErrUnknownSerial, serial)
		}
		if err := v.refetch(ctx); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnknownSerial, serial, err)
		}
		if _, ok := v.certs.Get(ctx, serial); !ok {
			return fmt.Errorf("%w: %s, also after downloading the certificates", ErrUnknownSerial, serial)
		}
	}
	return v.certsV.Verify(ctx, serial, message, signature)
}

// GetSerial returns the serial that answers should be signed with: the
// public key ID when there is one (as wechatpay-go's combined verifier
// does), else the newest certificate's serial.
func (v *PlatformVerifier) GetSerial(ctx context.Context) (string, error) {
	if v.keyV != nil {
		return v.keyID, nil
	}
	return v.certs.GetNewestSerial(ctx), nil
}

// errTooSoon: the last triggered download started less than the refetch
// interval ago.
var errTooSoon = errors.New("certificates were downloaded less than the refetch interval ago")

// refetch downloads the certificates unless a download started less than
// the interval ago; a download already running is waited for instead.
func (v *PlatformVerifier) refetch(ctx context.Context) error {
	v.mu.Lock()
	if f := v.inflight; f != nil {
		v.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := v.now()
	if !v.lastStart.IsZero() && now.Sub(v.lastStart) < v.interval {
		v.mu.Unlock()
		return errTooSoon
	}
	f := &flight{done: make(chan struct{})}
	v.inflight, v.lastStart = f, now
	v.mu.Unlock()

	// Waiters are released however the download ends, a panic included.
	f.err = errDownloadPanicked
	defer func() {
		v.mu.Lock()
		v.inflight = nil
		v.mu.Unlock()
		close(f.done)
	}()
	// The download outlives a cancelled caller: others may be waiting.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
	defer cancel()
	if err := v.certs.DownloadCertificates(dctx); err != nil {
		f.err = fmt.Errorf("downloading platform certificates: %w", err)
		return f.err
	}
	f.err = nil
	return nil
}

var errDownloadPanicked = errors.New("client: downloading platform certificates panicked")

var _ auth.Verifier = (*PlatformVerifier)(nil)
