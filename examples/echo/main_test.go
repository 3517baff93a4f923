package main

import (
	"net/http"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/routertest"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

func TestRouter(t *testing.T) {
	routertest.Run(t, func(key string, v auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (http.Handler, error) {
		return newRouter(key, v, cb, opts...)
	})
}
