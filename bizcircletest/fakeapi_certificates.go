package bizcircletest

import (
	"net/http"
	"slices"
	"time"
)

// Rotate adds a new certificate-mode platform with the same APIv3 key and
// clock, and returns it: WeChat Pay rotating its platform certificate. From
// now on /v3/certificates lists it beside the older ones, and it signs the
// answers to requests that do not name an older serial. Sign notifications
// with the returned Platform to test a rotation.
func (s *APIHandler) Rotate() *Platform {
	p := NewCertificatePlatform()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.platforms[len(s.platforms)-1]
	p.APIv3Key, p.Now = cur.APIv3Key, cur.Now
	s.platforms = append(s.platforms, p)
	return p
}

// certificates answers GET /v3/certificates as WeChat Pay does: each
// certificate-mode platform's certificate as PEM, encrypted with
// AEAD_AES_256_GCM under the APIv3 key with associated data "certificate".
func (s *APIHandler) certificates() answer {
	s.mu.Lock()
	platforms := slices.Clone(s.platforms)
	s.mu.Unlock()
	type encrypted struct {
		Algorithm      string `json:"algorithm"`
		Nonce          string `json:"nonce"`
		AssociatedData string `json:"associated_data"`
		Ciphertext     string `json:"ciphertext"`
	}
	type certificate struct {
		SerialNo           string    `json:"serial_no"`
		EffectiveTime      string    `json:"effective_time"`
		ExpireTime         string    `json:"expire_time"`
		EncryptCertificate encrypted `json:"encrypt_certificate"`
	}
	data := []certificate{}
	for _, p := range platforms {
		if p.Certificate == nil {
			continue
		}
		ciphertext, nonce := p.Encrypt([]byte(p.CertificatePEM()), "certificate")
		data = append(data, certificate{
			SerialNo:      p.Serial,
			EffectiveTime: p.Certificate.NotBefore.In(shanghai).Format(time.RFC3339),
			ExpireTime:    p.Certificate.NotAfter.In(shanghai).Format(time.RFC3339),
			EncryptCertificate: encrypted{
				Algorithm:      "AEAD_AES_256_GCM",
				Nonce:          nonce,
				AssociatedData: "certificate",
				Ciphertext:     ciphertext,
			},
		})
	}
	return answer{http.StatusOK, mustJSON(map[string]any{"data": data})}
}
