package redisdedupe_test

import (
	"context"
	"log"
	"net/http"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/redisdedupe"
	"github.com/redis/go-redis/v9"
)

// Every replica of the callback service builds the same handler on the same
// Redis: a notification runs its callback once, whichever replicas WeChat
// Pay's deliveries reach. (Not run: it needs a Redis server.)
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
	defer rdb.Close()

	// In production: the APIv3 key and a wechatpay-go verifier for the
	// WeChat Pay public key. Here the test kit plays WeChat Pay.
	wechat := bizcircletest.NewPlatform()
	dedupe, err := redisdedupe.New(rdb, redisdedupe.WithPrefix("mall:bizcircle:"))
	if err != nil {
		log.Fatal(err)
	}
	h, err := bizcircle.New(wechat.APIv3Key, wechat.Verifier(),
		bizcircle.CallbackFuncs{
			Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
				log.Printf("award %d points for %s", e.Amount/100, e.TransactionID)
				return nil
			},
		},
		bizcircle.WithDeduper(dedupe))
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /wechat/bizcircle", h)
	log.Fatal(http.ListenAndServe(":8080", mux))
}
