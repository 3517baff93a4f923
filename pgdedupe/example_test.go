package pgdedupe_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// A points ledger in PostgreSQL: each callback writes its ledger row with the
// transaction that also holds the event's dedupe row, so the points and the
// "processed" mark commit together or not at all. A crash before the commit
// awards nothing and WeChat Pay's retry awards once; a retry after the commit
// awards nothing.
//
// It needs a PostgreSQL server and WeChat Pay's key, so it is compiled but
// not run (no Output comment); TestHandlerTwoReplicas runs the same code
// against a real server.
func Example_pointsLedger() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	dedupe, err := pgdedupe.New(pool) // table bizcircle_dedupe, keys kept 25h
	if err != nil {
		log.Fatal(err)
	}
	defer dedupe.Close() // stops the hourly cleanup of expired keys
	if err := dedupe.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	// award adds points (negative to take them back) in the callback's
	// transaction. The ledger keeps one row per event whatever writes it
	// (another mode, before a switch):
	//
	//	CREATE TABLE points_ledger (
	//		id       bigserial PRIMARY KEY,
	//		openid   text   NOT NULL,
	//		event_id text   NOT NULL UNIQUE, -- transaction_id or refund_id
	//		points   bigint NOT NULL
	//	);
	award := func(ctx context.Context, openID, eventID string, points int64) error {
		tx, ok := pgdedupe.Tx(ctx)
		if !ok {
			return pgdedupe.ErrNoTx // not behind the Deduper
		}
		_, err := tx.Exec(ctx,
			`INSERT INTO points_ledger (openid, event_id, points) VALUES ($1, $2, $3)
			ON CONFLICT (event_id) DO NOTHING`, // awarded already: nothing to add
			openID, eventID, points)
		return err // an error rolls back the row and the dedupe mark: WeChat retries
	}

	pub, err := utils.LoadPublicKeyWithPath("wechatpay_public_key.pem")
	if err != nil {
		log.Fatal(err)
	}
	verifier := verifiers.NewSHA256WithRSAPubkeyVerifier("PUB_KEY_ID_0114232134912410000000000000", *pub)
	h, err := bizcircle.New(os.Getenv("WECHATPAY_APIV3_KEY"), verifier, bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			return award(ctx, e.OpenID, e.TransactionID, e.Amount/100) // 1 point per yuan
		},
		Refund: func(ctx context.Context, e *bizcircle.RefundEvent) error {
			return award(ctx, e.OpenID, e.RefundID, -e.RefundAmount/100)
		},
	}, bizcircle.WithDeduper(dedupe))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /wechat/bizcircle", h)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
