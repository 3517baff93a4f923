package bizcircletest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// TestAPIServer_answersAreSigned: wechatpay-go's response validation
// accepts the answers, for both kinds of platform.
func TestAPIServer_answersAreSigned(t *testing.T) {
	for name, p := range map[string]*bizcircletest.Platform{
		"certificate": sharedPlatform(),
		"public key":  bizcircletest.NewPlatform(),
	} {
		t.Run(name, func(t *testing.T) {
			s := bizcircletest.NewAPIServer(p, sharedMerchant())
			defer s.Close()
			c := s.NewClient()
			res, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com"+authPath)
			if err != nil {
				t.Fatal(err)
			}
			if res.Response.StatusCode != http.StatusOK || res.Response.Header.Get("Wechatpay-Serial") != p.Serial {
				t.Errorf("answered %d signed by %s", res.Response.StatusCode, res.Response.Header.Get("Wechatpay-Serial"))
			}
			res, err = c.Post(context.Background(), "https://api.mch.weixin.qq.com"+bizcircletest.PathPointsNotify, map[string]any{
				"transaction_id": "1", "appid": "wx1", "openid": "o1", "earn_points": false, "increased_points": 0,
				"points_update_time": "2020-05-20T13:29:35.120+08:00",
			})
			if err != nil || res.Response.StatusCode != http.StatusNoContent {
				t.Fatalf("points: %v", err)
			}
		})
	}
}

// TestAPIServer_rejectsBadSignatures: requests not signed by the merchant's
// key are answered 401 SIGN_ERROR, as WeChat Pay does.
func TestAPIServer_rejectsBadSignatures(t *testing.T) {
	s := newServer(t)
	m := *sharedMerchant()
	otherKey := m
	otherKey.Key = bizcircletest.NewMerchant().Key
	otherMchID := m
	otherMchID.MchID = "1999999999"
	otherSerial := m
	otherSerial.Serial = "0123456789ABCDEF0123456789ABCDEF01234567"
	for name, signer := range map[string]bizcircletest.Merchant{
		"another key": otherKey, "another mchid": otherMchID, "another serial": otherSerial,
	} {
		t.Run(name, func(t *testing.T) {
			c := s.NewClient(signer.Credential())
			_, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com"+authPath)
			var apiErr *core.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "SIGN_ERROR" {
				t.Errorf("err = %v, want 401 SIGN_ERROR", err)
			}
		})
	}
	t.Run("no Authorization", func(t *testing.T) {
		res, err := s.HTTPClient().Get("https://api.mch.weixin.qq.com" + authPath)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct{ Code string }
		_ = json.NewDecoder(res.Body).Decode(&body)
		if res.StatusCode != http.StatusUnauthorized || body.Code != "SIGN_ERROR" {
			t.Errorf("answered %d %s", res.StatusCode, body.Code)
		}
	})
	for _, c := range s.Calls() {
		if c.Status != http.StatusUnauthorized {
			t.Errorf("recorded %s %s → %d", c.Method, c.Path, c.Status)
		}
	}
}
