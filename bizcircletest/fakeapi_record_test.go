package bizcircletest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

func TestAPIServer_records(t *testing.T) {
	s := newServer(t)
	c := s.NewClient()
	_, err := c.Post(context.Background(), "https://api.mch.weixin.qq.com"+bizcircletest.PathParkings, map[string]any{
		"brandid": 1000, "appid": "wx1", "openid": "o1", "plate_number": "粤B888888", "state": "IN",
		"time": "2020-05-20T13:29:35.120+08:00",
	})
	if err != nil {
		t.Fatal(err)
	}
	call, ok := s.LastCall()
	if !ok || call.Method != http.MethodPost || call.Path != bizcircletest.PathParkings || call.Host != "api.mch.weixin.qq.com" ||
		call.Status != http.StatusNoContent || call.JSON["brandid"] != json.Number("1000") || call.JSON["plate_number"] != "粤B888888" {
		t.Errorf("recorded %+v", call)
	}
}
