package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// staleBy is how old --stale makes the timestamp: twice WeChat Pay's
// 5-minute window.
const staleBy = 2 * bizcircle.DefaultTolerance

// forgery describes the notification the endpoint must refuse, or is "".
func (o *sendOptions) forgery() string {
	switch {
	case o.tamper:
		return "body changed after signing"
	case o.stale:
		return fmt.Sprintf("timestamp %v old", staleBy)
	case o.probe:
		return "signature replaced by a " + bizcircle.SignTestPrefix + " probe"
	case o.wrongKey:
		return "signed with a key the endpoint does not know, under the same public key ID"
	}
	return ""
}

// tamper returns a copy of m whose body was changed after signing, as an
// attacker would: same envelope, different bytes.
func tamper(m *bizcircletest.Message) *bizcircletest.Message {
	c := m.Clone()
	c.Body = bytes.Replace(c.Body, []byte(`"summary":"`), []byte(`"summary":"TAMPERED `), 1)
	if bytes.Equal(c.Body, m.Body) {
		c.Body = append(c.Body, ' ')
	}
	return c
}

// probe returns a copy of m carrying WeChat Pay's check that merchants
// verify: WECHATPAY/SIGNTEST/ and random base64 in place of the signature.
func probe(m *bizcircletest.Message) *bizcircletest.Message {
	c := m.Clone()
	sig := make([]byte, 256) // as long as a real RSA-2048 signature
	if _, err := rand.Read(sig); err != nil {
		panic("bizcircle send: " + err.Error())
	}
	c.Header.Set(bizcircle.HeaderSignature, bizcircle.SignTestPrefix+base64.StdEncoding.EncodeToString(sig))
	return c
}
