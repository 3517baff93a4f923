package devkeys

import (
	"context"
	"flag"
	"log"
	"net/http"

	"github.com/go-bizcircle/bizcircle"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// Callbacks are the examples' stand-in business logic: they log what a
// mall would do. In production, award and take back points here; an error
// makes WeChat Pay retry.
func Callbacks() bizcircle.CallbackFuncs {
	return bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			log.Printf("award points: transaction_id=%s amount=%d fen", e.TransactionID, e.Amount)
			return nil
		},
		Refund: func(ctx context.Context, e *bizcircle.RefundEvent) error {
			log.Printf("take back points: refund_id=%s amount=%d fen", e.RefundID, e.RefundAmount)
			return nil
		},
	}
}

// Serve is the router examples' main: it reads --addr and --keys, builds
// the router with the keys and Callbacks, and serves it until it fails.
func Serve(newRouter func(apiV3Key string, verifier auth.Verifier, cb bizcircle.Callbacks) (http.Handler, error)) {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	keys := flag.String("keys", DefaultDir, "directory written by 'bizcircle keygen'")
	flag.Parse()
	apiV3Key, verifier, err := Load(*keys)
	if err != nil {
		log.Fatal(err)
	}
	r, err := newRouter(apiV3Key, verifier, Callbacks())
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s/wechat/bizcircle", *addr)
	log.Fatal(http.ListenAndServe(*addr, r))
}
