// Command gin mounts the bizcircle endpoint on a Gin engine with
// gin.WrapH. Mount it where nothing reads the body first (ShouldBind,
// body-logging middleware): the signature is over the raw bytes.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./gin --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send                       # in the repository root
package main

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// newRouter returns the mall's Gin engine with the notification endpoint
// at POST /wechat/bizcircle.
func newRouter(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (*gin.Engine, error) {
	h, err := bizcircle.New(apiV3Key, verifier, cb, opts...)
	if err != nil {
		return nil, err
	}
	r := gin.New()
	r.Use(gin.Recovery())
	r.POST("/wechat/bizcircle", gin.WrapH(h))
	return r, nil
}

func main() {
	devkeys.Serve(func(key string, v auth.Verifier, cb bizcircle.Callbacks) (http.Handler, error) {
		return newRouter(key, v, cb)
	})
}
