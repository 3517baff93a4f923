package bizcircletest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// TestAPIServer_checksRequiredFields: like WeChat Pay, the server refuses a
// body without a required field, or with a time that is not RFC 3339.
func TestAPIServer_checksRequiredFields(t *testing.T) {
	s := newServer(t)
	c := s.NewClient()
	full := func() map[string]any {
		return map[string]any{
			"transaction_id": "1", "appid": "wx1", "openid": "o1", "earn_points": false, "increased_points": 0,
			"points_update_time": "2020-05-20T13:29:35.120+08:00",
		}
	}
	tests := map[string]func(map[string]any){
		"no earn_points":       func(b map[string]any) { delete(b, "earn_points") },
		"no increased_points":  func(b map[string]any) { delete(b, "increased_points") },
		"time with a space":    func(b map[string]any) { b["points_update_time"] = "2020-09-16 16:04:02" },
		"empty transaction_id": func(b map[string]any) { b["transaction_id"] = "" },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			b := full()
			edit(b)
			_, err := c.Post(context.Background(), "https://api.mch.weixin.qq.com"+bizcircletest.PathPointsNotify, b)
			var apiErr *core.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "PARAM_ERROR" {
				t.Errorf("err = %v, want 400 PARAM_ERROR", err)
			}
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		_, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com/v3/nothing")
		var apiErr *core.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
			t.Errorf("err = %v, want 404", err)
		}
	})
}
