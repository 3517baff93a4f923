package bizcircletest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"strings"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

// A Merchant is the mall's side of API calls: its merchant ID and the API
// key pair that signs each request's Authorization header. [APIHandler]
// and [APIServer] accept requests signed by their Merchant only.
type Merchant struct {
	// MchID is the merchant ID (商户号).
	MchID string
	// Key is the merchant API private key (商户API私钥). A Merchant that
	// only verifies, such as a fake API's for a real merchant, may leave it
	// nil and set PublicKey.
	Key *rsa.PrivateKey
	// PublicKey verifies the merchant's signatures. Default (nil): Key's
	// public key.
	PublicKey *rsa.PublicKey
	// Serial is the merchant API certificate serial (40 hex digits) that
	// names Key in the Authorization header.
	Serial string
}

// NewMerchant returns a Merchant with a random 10-digit merchant ID, a fresh
// 2048-bit key and a random certificate serial.
func NewMerchant() *Merchant {
	serial := make([]byte, 20)
	must(rand.Read(serial))
	return &Merchant{
		MchID:  "1" + randomDigits(9),
		Key:    newKey(),
		Serial: strings.ToUpper(hex.EncodeToString(serial)),
	}
}

// Credential returns the wechatpay-go client option that signs requests as
// m, for core.NewClient. It needs m.Key.
func (m *Merchant) Credential() core.ClientOption {
	return option.WithMerchantCredential(m.MchID, m.Serial, m.Key)
}

// publicKey returns the key that verifies m's signatures, or nil.
func (m *Merchant) publicKey() *rsa.PublicKey {
	switch {
	case m.PublicKey != nil:
		return m.PublicKey
	case m.Key != nil:
		return &m.Key.PublicKey
	}
	return nil
}
