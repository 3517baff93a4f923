package client

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
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
	// DefaultRefreshInterval is the time between two scheduled downloads,
	// as in wechatpay-go's downloader manager: a certificate WeChat Pay has
	// retired stops verifying within a day.
	DefaultRefreshInterval = 24 * time.Hour
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
// It also downloads the certificates on a schedule ([WithRefreshInterval],
// every 24 hours by default) and replaces the ones it holds with the list
// downloaded, so a certificate WeChat Pay has retired stops verifying. A
// failed scheduled download keeps the certificates held and is tried again
// sooner (see [WithRefreshInterval]).
//
// Use it with bizcircle.VerifyAndDecrypt and as the API client's verifier
// (wechatpay-go's option.WithVerifier). A PlatformVerifier is safe for
// concurrent use. With certificates it runs one goroutine for the schedule:
// call [PlatformVerifier.Close] when done with it.
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

	refresh   time.Duration
	log       *slog.Logger
	ctx       context.Context // ends at Close; scheduled downloads run on it
	cancel    context.CancelFunc
	done      chan struct{} // closed when the schedule's goroutine returns; nil without one
	closeOnce sync.Once
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
	refresh  time.Duration
	now      func() time.Time
	log      *slog.Logger
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

// WithRefreshInterval sets the time between two scheduled downloads of the
// certificates; a value not above zero is an error from
// [NewPlatformVerifier]. After a failed scheduled download the next one
// comes sooner: the refetch interval after the first failure, doubling
// with each failure after it, never later than d. Default:
// [DefaultRefreshInterval] (24 hours).
func WithRefreshInterval(d time.Duration) VerifierOption {
	return func(c *verifierConfig) {
		if d <= 0 {
			c.fail("WithRefreshInterval: interval must be positive")
			return
		}
		c.refresh = d
	}
}

// WithLogger sets the logger that failed scheduled downloads are
// reported to, as warnings without request or answer dumps; nil keeps the
// default. Default: slog.Default().
func WithLogger(l *slog.Logger) VerifierOption {
	return func(c *verifierConfig) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClock sets the clock that [WithRefetchInterval] is measured
// with; nil is an error from [NewPlatformVerifier]. The schedule of
// [WithRefreshInterval] runs on timers, not on this clock (tests drive it
// with testing/synctest). Default: time.Now.
func WithClock(now func() time.Time) VerifierOption {
	return func(c *verifierConfig) {
		if now == nil {
			c.fail("WithClock: nil clock")
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
// With certificates, the verifier starts a goroutine that downloads them
// again every [WithRefreshInterval]; [PlatformVerifier.Close] stops it.
// ctx bounds the first download only.
//
// A nil api gives a verifier for the public key alone, which needs
// [WithPublicKey]. A failed first download, an APIv3 key that is not 32
// bytes, or an invalid option is an error.
func NewPlatformVerifier(ctx context.Context, api *core.Client, apiV3Key string, opts ...VerifierOption) (*PlatformVerifier, error) {
	c := verifierConfig{
		interval: DefaultRefetchInterval,
		timeout:  DefaultRefetchTimeout,
		refresh:  DefaultRefreshInterval,
		now:      time.Now,
		log:      slog.Default(),
	}
	for _, opt := range opts {
		opt(&c)
	}
	if c.err != nil {
		return nil, c.err
	}
	v := &PlatformVerifier{interval: c.interval, timeout: c.timeout, now: c.now, refresh: c.refresh, log: c.log}
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
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.done = make(chan struct{})
	go v.schedule()
	return v, nil
}

// Close stops the scheduled downloads, cancelling one that is running, and
// waits for the goroutine to return. The verifier still verifies after
// Close, with the certificates it holds, and still downloads them on an
// unknown serial. Close is safe to call more than once, and concurrently; it
// always returns nil.
func (v *PlatformVerifier) Close() error {
	v.closeOnce.Do(func() {
		if v.done == nil {
			return // public key only: no goroutine
		}
		v.cancel()
		<-v.done
	})
	return nil
}

// schedule downloads the certificates every refresh interval until Close;
// after a failure it tries again sooner, backing off from the refetch
// interval.
func (v *PlatformVerifier) schedule() {
	defer close(v.done)
	failures := 0
	t := time.NewTimer(v.refresh)
	defer t.Stop()
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-t.C:
		}
		wait := v.refresh
		if err := v.scheduledDownload(); err != nil {
			if v.ctx.Err() != nil {
				return // Close interrupted the download: not a failure
			}
			failures++
			wait = v.retryDelay(failures)
			v.log.Warn("client: scheduled platform certificate download failed; keeping the certificates held",
				"error", describe(err), "failures", failures, "retry_in", wait)
		} else {
			failures = 0
		}
		t.Reset(wait)
	}
}

// retryDelay is the wait after the n-th failed scheduled download in a row:
// the refetch interval doubled n-1 times, at most the refresh interval.
func (v *PlatformVerifier) retryDelay(n int) time.Duration {
	d := v.interval
	for range n - 1 {
		if d >= v.refresh/2 {
			return v.refresh
		}
		d *= 2
	}
	return min(d, v.refresh)
}

// scheduledDownload runs one scheduled download (or joins a triggered one
// already running); a panic in wechatpay-go's downloader is a failure, not
// a crash of the program.
func (v *PlatformVerifier) scheduledDownload() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errDownloadPanicked
		}
	}()
	return v.download(v.ctx, v.ctx, false)
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

// refetch downloads the certificates unless a triggered download started
// less than the interval ago; a download already running is waited for
// instead.
func (v *PlatformVerifier) refetch(ctx context.Context) error {
	// The download outlives a cancelled caller: others may be waiting.
	return v.download(ctx, context.WithoutCancel(ctx), true)
}

// download downloads the certificates, replacing those held, or waits for
// the download already running until ctx ends. A triggered download (one
// for an unknown serial) is refused within the refetch interval of the last
// one; scheduled downloads neither count towards that limit nor are refused
// by it. base is the parent of the download's own timeout.
func (v *PlatformVerifier) download(ctx, base context.Context, triggered bool) error {
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
	if triggered {
		now := v.now()
		if !v.lastStart.IsZero() && now.Sub(v.lastStart) < v.interval {
			v.mu.Unlock()
			return errTooSoon
		}
		v.lastStart = now
	}
	f := &flight{done: make(chan struct{})}
	v.inflight = f
	v.mu.Unlock()

	// Waiters are released however the download ends, a panic included.
	f.err = errDownloadPanicked
	defer func() {
		v.mu.Lock()
		v.inflight = nil
		v.mu.Unlock()
		close(f.done)
	}()
	dctx, cancel := context.WithTimeout(base, v.timeout)
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
