// Command stdlib mounts the bizcircle endpoint on the standard library's
// http.ServeMux, with a method-and-path pattern.
//
//	go run ./cmd/bizcircle keygen                     # in the repository root
//	cd examples && go run ./stdlib --keys ../bizcircle-keys
//	go run ./cmd/bizcircle send                       # in the repository root
package main

import (
	"context"
	"flag"
	"log"
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
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	keys := flag.String("keys", devkeys.DefaultDir, "directory written by 'bizcircle keygen'")
	flag.Parse()
	apiV3Key, verifier, err := devkeys.Load(*keys)
	if err != nil {
		log.Fatal(err)
	}
	r, err := newRouter(apiV3Key, verifier, bizcircle.CallbackFuncs{
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
	log.Fatal(http.ListenAndServe(*addr, r))
}
