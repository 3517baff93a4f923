package main

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/routertest"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

func TestRouter(t *testing.T) {
	gin.SetMode(gin.TestMode)
	routertest.Run(t, func(key string, v auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (http.Handler, error) {
		return newRouter(key, v, cb, opts...)
	})
}
