package bizcircletest_test

import (
	"io"
	"net/http"
	"testing"
)

func TestAPIServer_HTTPClientReachesServer(t *testing.T) {
	s := newServer(t)
	res, err := s.HTTPClient().Get("http://elsewhere.example/v3/certificates")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Wechatpay-Signature") == "" {
		t.Errorf("answered %d, signature %q", res.StatusCode, res.Header.Get("Wechatpay-Signature"))
	}
}
