// Command stdlib mounts the bizcircle endpoint on the standard library's
// http.ServeMux, with a method-and-path pattern.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./stdlib --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send                       # in the repository root
package main

import (
	"net/http"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/examples/internal/devkeys"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// newRouter returns the mall's HTTP routes with the notification endpoint
// at POST /wechat/bizcircle.
func newRouter(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks, opts ...bizcircle.Option) (http.Handler, error) {
	h, err := bizcircle.New(apiV3Key, verifier, cb, opts...)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /wechat/bizcircle", h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return mux, nil
}

func main() {
	devkeys.Serve(func(key string, v auth.Verifier, cb bizcircle.Callbacks) (http.Handler, error) {
		return newRouter(key, v, cb)
	})
}
