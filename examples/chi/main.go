// Command chi mounts the bizcircle middleware and handler apart on a chi
// router: VerifyAndDecrypt on the route, NewHandler behind it.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./chi --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send                       # in the repository root
package main

import (
	"net/http"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// newRouter returns the mall's chi router with the notification endpoint
// at POST /wechat/bizcircle.
func newRouter(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (http.Handler, error) {
	verify, err := bizcircle.VerifyAndDecrypt(apiV3Key, verifier, opts...)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer) // router-wide middleware that leaves the body alone is fine
	r.With(verify).Post("/wechat/bizcircle", bizcircle.NewHandler(cb, opts...).ServeHTTP)
	return r, nil
}

func main() {
	devkeys.Serve(func(key string, v auth.Verifier, cb bizcircle.Callbacks) (http.Handler, error) {
		return newRouter(key, v, cb)
	})
}
