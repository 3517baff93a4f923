package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

// The whole flow: WeChat Pay notifies a payment, the callback awards points
// and syncs them with SyncPoints. The fake API server plays WeChat Pay.
func Example() {
	platform := bizcircletest.NewPlatform() // WeChat Pay's keys
	api := bizcircletest.NewAPIServer(platform, bizcircletest.NewMerchant())
	defer api.Close()

	// In production, api.NewClient() is core.NewClient with the merchant's
	// credential and WeChat Pay's public key or a PlatformVerifier.
	bc, err := client.New(api.NewClient(), client.WithRetry(client.RetryPolicy{}))
	if err != nil {
		panic(err)
	}
	cst := time.FixedZone("CST", 8*3600)
	now := func() time.Time { return time.Date(2020, 5, 20, 13, 29, 36, 120e6, cst) }

	endpoint, err := bizcircle.New(platform.APIv3Key, platform.Verifier(), bizcircle.CallbackFuncs{
		Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
			points := e.Amount / 100 // one point per yuan
			req := client.NewSyncPointsRequest(e, points, now())
			req.TotalPoints = client.Int64(1000 + points) // the new balance
			return bc.SyncPoints(ctx, req)                // an error makes WeChat Pay retry
		},
	})
	if err != nil {
		panic(err)
	}

	payment := bizcircletest.SamplePayment()
	payment.TransactionID = "4200000001202005201234567890"
	payment.Amount = 25800 // 258.00 yuan
	w := httptest.NewRecorder()
	endpoint.ServeHTTP(w, platform.Payment(payment).Request("/bizcircle/notify"))
	fmt.Println("notification answered", w.Code)

	call, _ := api.LastCall()
	fmt.Println(call.Method, call.Path, call.Status)
	fmt.Println(string(call.Body))
	// Output:
	// notification answered 204
	// POST /v3/businesscircle/points/notify 204
	// {"transaction_id":"4200000001202005201234567890","appid":"wxd678efh567hg6787","openid":"oUpF8uMuAJ2pxb1Q9zNjWUHsd","earn_points":true,"increased_points":258,"points_update_time":"2020-05-20T13:29:36.120+08:00","total_points":1258}
}

// A PlatformVerifier follows platform certificate rotations: a notification
// signed by a certificate issued after start-up is accepted after one
// download of the certificates.
func ExampleNewPlatformVerifier() {
	platform := bizcircletest.NewCertificatePlatform()
	api := bizcircletest.NewAPIServer(platform, bizcircletest.NewMerchant())
	defer api.Close()

	// The downloading client signs as the merchant; the certificates it
	// fetches are authenticated by the APIv3 key.
	v, err := client.NewPlatformVerifier(context.Background(), api.NewClient(option.WithoutValidator()), platform.APIv3Key)
	if err != nil {
		panic(err)
	}
	defer v.Close() // stops the daily download
	endpoint, err := bizcircle.New(platform.APIv3Key, v, bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }})
	if err != nil {
		panic(err)
	}

	rotated := api.Rotate() // WeChat Pay starts signing with a new certificate
	w := httptest.NewRecorder()
	endpoint.ServeHTTP(w, rotated.Payment(bizcircletest.SamplePayment()).Request("/bizcircle/notify"))
	fmt.Println("notification answered", w.Code)
	fmt.Println("certificate downloads:", len(api.CallsTo(bizcircletest.PathCertificates)))
	// Output:
	// notification answered 204
	// certificate downloads: 2
}
