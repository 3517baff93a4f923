package bizcircletest_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

func TestAPIServer_failures(t *testing.T) {
	s := newServer(t)
	c := s.NewClient()
	get := func() error {
		_, err := c.Get(context.Background(), "https://api.mch.weixin.qq.com"+authPath)
		return err
	}
	s.FailNext(1, bizcircletest.FailParamError)
	s.FailNext(1, bizcircletest.FailFrequencyLimited)
	s.FailNext(1, bizcircletest.FailSystemError)
	s.DisconnectNext(1)
	for _, want := range []bizcircletest.Failure{bizcircletest.FailParamError, bizcircletest.FailFrequencyLimited, bizcircletest.FailSystemError} {
		var apiErr *core.APIError
		if err := get(); !errors.As(err, &apiErr) || apiErr.StatusCode != want.Status || apiErr.Code != want.Code || apiErr.Message != want.Message {
			t.Errorf("err = %v, want %v", err, want)
		}
	}
	var apiErr *core.APIError
	if err := get(); err == nil || errors.As(err, &apiErr) {
		t.Errorf("disconnect: err = %v, want a network error", err)
	}
	if err := get(); err != nil {
		t.Errorf("after the failures: %v", err)
	}
	var statuses []int
	for _, c := range s.Calls() {
		statuses = append(statuses, c.Status)
	}
	if want := []int{400, 429, 500, 0, 200}; !slices.Equal(statuses, want) {
		t.Errorf("recorded statuses %v, want %v", statuses, want)
	}
	s.Reset()
	if n := len(s.Calls()); n != 0 {
		t.Errorf("%d calls after Reset", n)
	}
}
