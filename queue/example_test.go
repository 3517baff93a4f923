package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/pgdedupe"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Queue mode with a points ledger: the endpoint answers as soon as the
// notification is stored; the workers award points in the job's
// transaction, which commits with the job's completion or not at all.
//
// It needs PostgreSQL and WeChat Pay's keys, so it is compiled but not run
// (no Output comment); the package's tests run the same code against a real
// server.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL")) // pool_max_conns at least the workers (32) + 4 for River
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := queue.Migrate(ctx, pool); err != nil { // River's own migrations
		log.Fatal(err)
	}

	award := func(ctx context.Context, openID, eventID string, points int64) error {
		tx, ok := queue.Tx(ctx) // the job's transaction
		if !ok {
			return errors.New("not in a queue worker")
		}
		// points_ledger's event_id is UNIQUE: a repeat of an event, even one
		// processed before a switch of modes, adds nothing.
		_, err := tx.Exec(ctx,
			`INSERT INTO points_ledger (openid, event_id, points) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING`,
			openID, eventID, points)
		return err // an error rolls the row back; River retries the job
	}

	pub, err := utils.LoadPublicKeyWithPath("wechatpay_public_key.pem")
	if err != nil {
		log.Fatal(err)
	}
	verifier := verifiers.NewSHA256WithRSAPubkeyVerifier("PUB_KEY_ID_0114232134912410000000000000", *pub)
	q, err := queue.New(pool, os.Getenv("WECHATPAY_APIV3_KEY"), verifier, bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			return award(ctx, e.OpenID, e.TransactionID, e.Amount/100)
		},
		Refund: func(ctx context.Context, e *bizcircle.RefundEvent) error {
			return award(ctx, e.OpenID, e.RefundID, -e.RefundAmount/100)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()                      // lets running jobs finish, then cancels them
	if err := q.Start(ctx); err != nil { // the workers; skip in receive-only processes
		log.Fatal(err)
	}

	srv := &http.Server{Addr: ":8080", Handler: q.Endpoint()}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// The points-sync outbox on its own, from pgdedupe callbacks: the ledger
// row and the sync's job commit in the transaction that marks the event
// processed, and the Outbox's workers send the sync to WeChat Pay after the
// commit, with retries, holding no request or transaction meanwhile.
//
// It needs PostgreSQL and WeChat Pay's keys, so it is compiled but not run
// (no Output comment); TestSyncFromPgdedupe runs the same code against a
// real server and a fake WeChat Pay API.
func ExampleNewOutbox() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := queue.Migrate(ctx, pool); err != nil { // River's tables, for the syncs
		log.Fatal(err)
	}
	dedupe, err := pgdedupe.New(pool)
	if err != nil {
		log.Fatal(err)
	}
	defer dedupe.Close()
	if err := dedupe.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	apiV3Key := os.Getenv("WECHATPAY_APIV3_KEY")
	mchKey, err := utils.LoadPrivateKeyWithPath("apiclient_key.pem") // the merchant's API key
	if err != nil {
		log.Fatal(err)
	}
	pub, err := utils.LoadPublicKeyWithPath("wechatpay_public_key.pem")
	if err != nil {
		log.Fatal(err)
	}
	const pubKeyID = "PUB_KEY_ID_0114232134912410000000000000"
	api, err := core.NewClient(ctx, option.WithWechatPayPublicKeyAuthCipher(
		os.Getenv("MCHID"), os.Getenv("MCH_CERT_SERIAL"), mchKey, pubKeyID, pub))
	if err != nil {
		log.Fatal(err)
	}
	points, err := client.New(api)
	if err != nil {
		log.Fatal(err)
	}
	outbox, err := queue.NewOutbox(pool, apiV3Key, queue.WithPointsClient(points, queue.DefaultSyncWorkers))
	if err != nil {
		log.Fatal(err)
	}
	defer outbox.Close()
	if err := outbox.Start(ctx); err != nil { // the sync workers
		log.Fatal(err)
	}

	verifier := verifiers.NewSHA256WithRSAPubkeyVerifier(pubKeyID, *pub)
	h, err := bizcircle.New(apiV3Key, verifier, bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			tx, ok := pgdedupe.Tx(ctx) // the transaction that marks the event processed
			if !ok {
				return pgdedupe.ErrNoTx
			}
			// points_ledger's UNIQUE (event_id) holds one row per event,
			// whichever mode wrote it (README: Switching modes).
			tag, err := tx.Exec(ctx,
				`INSERT INTO points_ledger (openid, event_id, points) VALUES ($1, $2, $3)
				ON CONFLICT (event_id) DO NOTHING`,
				e.OpenID, e.TransactionID, e.Amount/100)
			if err != nil || tag.RowsAffected() == 0 {
				return err // nil: awarded and synced already
			}
			// An error here, or later in the callback, rolls back the row,
			// the sync and the mark together: WeChat Pay retries.
			_, err = outbox.SyncPointsTx(ctx, tx, client.NewSyncPointsRequest(e, e.Amount/100, time.Now()))
			return err
		},
	}, bizcircle.WithDeduper(dedupe))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /wechat/bizcircle", h)
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// Completed jobs are what refuse WeChat Pay's later duplicates, so River
// must keep them past WeChat Pay's 24h4m of retries: a shorter retention is
// refused.
func ExampleWithCompletedRetention() {
	pool, err := pgxpool.New(context.Background(), "postgres://localhost/mall") // connects lazily
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	wechat := bizcircletest.NewPlatform()
	_, err = queue.New(pool, wechat.APIv3Key, wechat.Verifier(), bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }},
		queue.WithCompletedRetention(24*time.Hour))
	fmt.Println(err)
	// Output:
	// queue: WithCompletedRetention: 24h0m0s is under 25h0m0s: WeChat Pay's retries would run callbacks again
}
