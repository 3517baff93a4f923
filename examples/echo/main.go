// Command echo mounts the bizcircle endpoint on an Echo server with
// echo.WrapHandler. As with any router, keep body-reading middleware (Bind,
// BodyDump) off this route: the signature is over the raw bytes.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./echo --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send                       # in the repository root
package main

import (
	"net/http"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// newRouter returns the mall's Echo server with the notification endpoint
// at POST /wechat/bizcircle.
func newRouter(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (*echo.Echo, error) {
	h, err := bizcircle.New(apiV3Key, verifier, cb, opts...)
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner = true
	e.Use(middleware.Recover())
	e.POST("/wechat/bizcircle", echo.WrapHandler(h))
	return e, nil
}

func main() {
	devkeys.Serve(func(key string, v auth.Verifier, cb bizcircle.Callbacks) (http.Handler, error) {
		return newRouter(key, v, cb)
	})
}
