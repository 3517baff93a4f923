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
// key pair that signs each request's Authorization header. [APIServer]
// accepts requests signed by its Merchant only.
type Merchant struct {
	// MchID is the merchant ID (商户号).
	MchID string
	// Key is the merchant API private key (商户API私钥).
	Key *rsa.PrivateKey
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
// m, for core.NewClient.
func (m *Merchant) Credential() core.ClientOption {
	return option.WithMerchantCredential(m.MchID, m.Serial, m.Key)
}
