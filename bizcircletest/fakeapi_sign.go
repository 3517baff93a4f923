package bizcircletest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
)

// authenticate verifies the Authorization header as WeChat Pay does:
// WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,timestamp=…,
// serial_no=… over "METHOD\nURI\ntimestamp\nnonce\nbody\n".
func (s *APIHandler) authenticate(r *http.Request, body []byte) error {
	scheme, params, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || scheme != "WECHATPAY2-SHA256-RSA2048" {
		return fmt.Errorf("Authorization is not WECHATPAY2-SHA256-RSA2048")
	}
	p := map[string]string{}
	for _, kv := range strings.Split(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		p[k] = strings.Trim(v, `"`)
	}
	for _, k := range []string{"mchid", "nonce_str", "signature", "timestamp", "serial_no"} {
		if p[k] == "" {
			return fmt.Errorf("Authorization has no %s", k)
		}
	}
	if p["mchid"] != s.merchant.MchID {
		return fmt.Errorf("unknown mchid")
	}
	ts, err := strconv.ParseInt(p["timestamp"], 10, 64)
	if err != nil {
		return fmt.Errorf("malformed timestamp")
	}
	if skew := time.Now().Unix() - ts; skew > 300 || skew < -300 {
		return fmt.Errorf("timestamp %ds off", skew)
	}
	msg := r.Method + "\n" + r.RequestURI + "\n" + p["timestamp"] + "\n" + p["nonce_str"] + "\n" + string(body) + "\n"
	v := verifiers.NewSHA256WithRSAPubkeyVerifier(s.merchant.Serial, *s.merchant.publicKey())
	if err := v.Verify(r.Context(), p["serial_no"], msg, p["signature"]); err != nil {
		return fmt.Errorf("signature does not verify with the merchant certificate")
	}
	return nil
}

// write signs the answer with the platform the request names in
// Wechatpay-Serial, else the newest, and sends it.
func (s *APIHandler) write(w http.ResponseWriter, r *http.Request, a answer) {
	p := s.signer(r.Header.Get("Wechatpay-Serial"))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := randomString(32)
	h := w.Header()
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Signature", p.Sign(ts, nonce, a.body))
	h.Set("Wechatpay-Serial", p.Serial)
	h.Set("Request-ID", newID())
	if a.body != nil {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func (s *APIHandler) signer(serial string) *Platform {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.platforms {
		if serial != "" && p.Serial == serial {
			return p
		}
	}
	return s.platforms[len(s.platforms)-1]
}
