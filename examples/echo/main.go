// Command echo mounts the bizcircle endpoint on an Echo server with
// echo.WrapHandler. As with any router, keep body-reading middleware (Bind,
// BodyDump) off this route: the signature is over the raw bytes.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./echo --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send                       # in the repository root
package main

import (
	"context"
	"flag"
	"log"

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
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	keys := flag.String("keys", devkeys.DefaultDir, "directory written by 'bizcircle keygen'")
	flag.Parse()
	apiV3Key, verifier, err := devkeys.Load(*keys)
	if err != nil {
		log.Fatal(err)
	}
	e, err := newRouter(apiV3Key, verifier, bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			log.Printf("award points: transaction_id=%s amount=%d fen", e.TransactionID, e.Amount)
			return nil // an error makes WeChat Pay retry
		},
		Refund: func(ctx context.Context, e *bizcircle.RefundEvent) error {
			log.Printf("take back points: refund_id=%s amount=%d fen", e.RefundID, e.RefundAmount)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s/wechat/bizcircle", *addr)
	log.Fatal(e.Start(*addr))
}
