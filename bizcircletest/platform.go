// Package bizcircletest plays WeChat Pay in tests: it holds a platform key,
// signs and encrypts notifications exactly as WeChat Pay does (the smart
// business circle events with [Platform.Payment], [Platform.Refund] and
// [Platform.Authorization], any other event type and plaintext with
// [Platform.Event]), and builds requests from them, so callbacks can be
// tested end to end through the real verification code. [Deliverer] replays
// WeChat Pay's retries, and [APIServer] fakes its API.
//
// Like net/http/httptest, its constructors panic on error for ease of use in
// tests. Never use its keys outside tests.
package bizcircletest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// A Platform plays WeChat Pay's side of one merchant: the platform key that
// signs notifications and the merchant's APIv3 key that encrypts them.
// Its fields may be changed between calls; a Platform is safe for concurrent
// use while they are not.
type Platform struct {
	// Key signs notifications.
	Key *rsa.PrivateKey
	// Serial names Key in Wechatpay-Serial: a public key ID (PUB_KEY_ID_…)
	// or a platform certificate serial (40 hex digits).
	Serial string
	// Certificate is the platform certificate in certificate mode, else nil.
	Certificate *x509.Certificate
	// APIv3Key is the 32-byte key that encrypts resources.
	APIv3Key string
	// Now stamps Wechatpay-Timestamp and create_time. Default: time.Now.
	Now func() time.Time
}

// NewPlatform returns a Platform in public-key mode: a fresh 2048-bit key
// with a random PUB_KEY_ID_ serial, and a fresh APIv3 key.
func NewPlatform() *Platform {
	return &Platform{
		Key:      newKey(),
		Serial:   "PUB_KEY_ID_" + randomDigits(32),
		APIv3Key: RandomAPIv3Key(),
		Now:      time.Now,
	}
}

// NewCertificatePlatform returns a Platform in certificate mode: a fresh key
// with a self-signed platform certificate whose serial is 40 hex digits.
func NewCertificatePlatform() *Platform {
	key := newKey()
	serial := make([]byte, 20)
	must(rand.Read(serial))
	serial[0] |= 0x10 // keep 20 significant bytes, so the serial has 40 digits
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial),
		Subject:      pkix.Name{CommonName: "Tenpay.com Root CA (bizcircletest)"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key))
	cert := must(x509.ParseCertificate(der))
	return &Platform{
		Key:         key,
		Serial:      utils.GetCertificateSerialNumber(*cert),
		Certificate: cert,
		APIv3Key:    RandomAPIv3Key(),
		Now:         time.Now,
	}
}

// Verifier returns the wechatpay-go verifier a merchant would configure for
// this platform: the public-key verifier, or in certificate mode the
// certificate verifier over a map holding Certificate.
func (p *Platform) Verifier() auth.Verifier {
	if p.Certificate != nil {
		return verifiers.NewSHA256WithRSAVerifier(core.NewCertificateMapWithList([]*x509.Certificate{p.Certificate}))
	}
	return verifiers.NewSHA256WithRSAPubkeyVerifier(p.Serial, p.Key.PublicKey)
}

// PublicKeyPEM returns the platform public key as a PEM "PUBLIC KEY" block,
// as WeChat Pay's merchant platform hands it out.
func (p *Platform) PublicKeyPEM() string {
	der := must(x509.MarshalPKIXPublicKey(&p.Key.PublicKey))
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// CertificatePEM returns Certificate as PEM, or "" in public-key mode.
func (p *Platform) CertificatePEM() string {
	if p.Certificate == nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate.Raw}))
}

// RandomAPIv3Key returns a fresh 32-character APIv3 key.
func RandomAPIv3Key() string {
	b := make([]byte, 16)
	must(rand.Read(b))
	return hex.EncodeToString(b)
}

func newKey() *rsa.PrivateKey {
	return must(rsa.GenerateKey(rand.Reader, 2048))
}

func randomDigits(n int) string {
	b := make([]byte, n)
	must(rand.Read(b))
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic("bizcircletest: " + err.Error())
	}
	return v
}
