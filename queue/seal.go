package queue

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// ErrSealed: a stored points sync does not open with a key derived from the
// APIv3 key (a row someone wrote into River's table, or the key changed
// without [WithAPIv3Keys]). The job is cancelled; nothing is sent. For
// OpenTelemetry's error.type it names itself "ErrSealed".
var ErrSealed error = &sentinel{"ErrSealed", "queue: stored points sync does not open with the APIv3 key"}

// sealInfo separates the sealing key from any other use of the APIv3 key.
const sealInfo = "bizcircle queue: points sync arguments v1"

// A sealer encrypts and authenticates job arguments that hold personal data
// (a points sync names the shopper's OpenID) with AES-256-GCM under keys
// derived from the APIv3 keys: the first seals, each opens.
type sealer struct {
	aeads []cipher.AEAD
}

func newSealer(apiV3Keys []string) (*sealer, error) {
	s := &sealer{}
	for _, k := range apiV3Keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("queue: APIv3 key must be 32 bytes, got %d", len(k))
		}
		key, err := hkdf.Key(sha256.New, []byte(k), nil, sealInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// seal returns nonce||ciphertext of plaintext bound to ad.
func (s *sealer) seal(plaintext, ad []byte) []byte {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, ad)
}

// open reverses seal with any of the keys.
func (s *sealer) open(sealed, ad []byte) ([]byte, error) {
	for _, aead := range s.aeads {
		if len(sealed) < aead.NonceSize() {
			break
		}
		nonce, ct := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
		if plaintext, err := aead.Open(nil, nonce, ct, ad); err == nil {
			return plaintext, nil
		}
	}
	return nil, ErrSealed
}
