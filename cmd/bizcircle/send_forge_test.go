package main

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
)

// TestSendForgeries sends what a receiver must refuse, built binary against
// 'bizcircle serve' (refused: exit 0) and against an endpoint that verifies
// nothing (accepted: exit 1).
func TestSendForgeries(t *testing.T) {
	dir := keysDir(t)
	srv := startServe(t, "--dir", dir)
	careless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer careless.Close()
	tests := []struct {
		flag, says, logged string
	}{
		{"--probe", "signature replaced by a WECHATPAY/SIGNTEST/ probe", "signature verification failed"},
		{"--wrong-key", "signed with a key the endpoint does not know", "signature verification failed"},
		{"--tamper", "body changed after signing", "signature verification failed"},
		{"--stale", "timestamp 10m0s old", "timestamp outside the tolerance window"},
	}
	for _, tt := range tests {
		t.Run(tt.flag+" is refused by serve", func(t *testing.T) {
			r := runBinary(t, "send", "--dir", dir, "--url", srv.url, tt.flag)
			if r.code != 0 {
				t.Fatalf("send: %v", r)
			}
			mustContain(t, "send output", r.stdout, tt.says, "→ 401 Unauthorized in ", "1 refused (4xx)", "ok: the endpoint refused the notification")
			mustContain(t, "serve output", srv.waitFor(t, "→ 401 rejected"), tt.logged)
		})
		t.Run(tt.flag+" accepted by an endpoint that verifies nothing exits 1", func(t *testing.T) {
			r := runBinary(t, "send", "--dir", dir, "--url", careless.URL, tt.flag, "--events", "3")
			if r.code != exitFailure {
				t.Fatalf("want exit 1, got %v", r)
			}
			mustContain(t, "send output", r.stdout, "event ", "→ 204 No Content", "3 sent: 3 acknowledged (200/204)", "FAIL: the endpoint must refuse this notification")
		})
	}
}

// TestSendForgeriesAreWellFormed checks, on the wire, that --probe and
// --wrong-key change only the signature.
func TestSendForgeriesAreWellFormed(t *testing.T) {
	dir := keysDir(t)
	id, err := readKeyFile(dir, publicKeyIDFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--probe", "--wrong-key"} {
		t.Run(flag+" names the receiver's public key ID and is refused as a bad signature", func(t *testing.T) {
			recv := newTestReceiver(t, dir, nil)
			if r := runBinary(t, "send", "--dir", dir, "--url", recv.url, flag); r.code != 0 {
				t.Fatalf("send: %v", r)
			}
			headers, refusals := recv.requests()
			if len(headers) != 1 || len(refusals) != 1 {
				t.Fatalf("%d requests, %d refused; want 1 and 1", len(headers), len(refusals))
			}
			h := headers[0]
			if h.Get(bizcircle.HeaderSerial) != id || h.Get(bizcircle.HeaderTimestamp) == "" || h.Get(bizcircle.HeaderNonce) == "" {
				t.Errorf("headers %v, want serial %s, a timestamp and a nonce", h, id)
			}
			sig := h.Get(bizcircle.HeaderSignature)
			if probe := strings.HasPrefix(sig, bizcircle.SignTestPrefix); probe != (flag == "--probe") {
				t.Errorf("signature %q: has the probe prefix = %v", sig, probe)
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, bizcircle.SignTestPrefix))
			if err != nil || len(raw) != 256 {
				t.Errorf("signature %q: want 256 bytes of base64 (err %v)", sig, err)
			}
			if !errors.Is(refusals[0], bizcircle.ErrSignature) {
				t.Errorf("refused with %v, want ErrSignature", refusals[0])
			}
		})
	}
}
