package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

const fakeapiUsage = `Usage: bizcircle fakeapi [flags]

Runs a fake WeChat Pay API on --addr, over plain HTTP, for an application
under local test: its own wechatpay-go core.Client calls it (with the kit's
client package: client.WithBaseURL), so its main program imports no test
package. It serves the smart business circle calls:

  POST /v3/businesscircle/points/notify                        积分同步, 204
  POST /v3/businesscircle/parkings                             停车状态同步, 204
  GET  /v3/businesscircle/user-authorizations/{openid}         授权查询, UNAUTHORIZED
  GET  /v3/businesscircle/users/{openid}/points/commit_status  待积分状态查询, FINISHED
  GET  /v3/certificates                                        none in public-key mode

As WeChat Pay does, it verifies each call's merchant signature (401
SIGN_ERROR) and required fields (400 PARAM_ERROR), and signs its answers
with the platform key from 'bizcircle keygen' in --dir. It prints each call
(method, path, status; never keys or bodies) and, at start, what the
application must configure: base URL, merchant, platform public key and ID.
Ctrl-C or SIGTERM stops it.

The merchant whose signatures it accepts:
  by default          a test merchant kept in --dir (merchant_private_key.pem,
                      merchant_serial, mchid), written there on the first run;
                      the application signs with its key
  --merchant-key FILE --mchid ID
                      your own merchant: FILE is its API certificate
                      (apiclient_cert.pem, which gives the serial too), or its
                      public or private key PEM with --merchant-serial

  --fail N                   answer the first N signed calls with an error:
  --fail-status S            500 SYSTEM_ERROR unless S is 400 PARAM_ERROR,
                             401 SIGN_ERROR, 403 NO_AUTH or 429 FREQUENCY_LIMITED
  --disconnect N             then drop the next N signed calls' connections unanswered

Examples:
  bizcircle keygen && bizcircle fakeapi
  bizcircle fakeapi --fail 2 --fail-status 429
  bizcircle fakeapi --merchant-key apiclient_cert.pem --mchid 1900000001
`

// fakeFailures are the errors --fail-status chooses from: WeChat Pay's
// codes for each status.
var fakeFailures = map[int]bizcircletest.Failure{
	http.StatusBadRequest:          bizcircletest.FailParamError,
	http.StatusUnauthorized:        {Status: http.StatusUnauthorized, Code: "SIGN_ERROR", Message: "签名错误"},
	http.StatusForbidden:           {Status: http.StatusForbidden, Code: "NO_AUTH", Message: "商户无权限"},
	http.StatusTooManyRequests:     bizcircletest.FailFrequencyLimited,
	http.StatusInternalServerError: bizcircletest.FailSystemError,
}

func runFakeAPI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("fakeapi")
	addr := fs.String("addr", "127.0.0.1:8081", "`address` to listen on (port 0 picks a free one)")
	dir := fs.String("dir", defaultKeyDir, "`directory` of the keys written by 'bizcircle keygen', and of the test merchant")
	merchantKey := fs.String("merchant-key", "", "PEM `file` of your merchant's API certificate, public key or private key (default: the test merchant in --dir)")
	mchID := fs.String("mchid", "", "your merchant's `ID` (商户号), with --merchant-key")
	merchantSerial := fs.String("merchant-serial", "", "your merchant API certificate's `serial`, with --merchant-key when it is not a certificate")
	fail := fs.Int("fail", 0, "answer the first `N` signed calls with --fail-status")
	failStatus := fs.Int("fail-status", http.StatusInternalServerError, "`status` of --fail's errors: 400, 401, 403, 429 or 500")
	disconnect := fs.Int("disconnect", 0, "after --fail's errors, drop the next `N` signed calls' connections unanswered")
	if ok, code := parseFlags(fs, fakeapiUsage, args, stdout, stderr); !ok {
		return code
	}
	failure, ok := fakeFailures[*failStatus]
	switch {
	case *fail < 0:
		return usageError(stderr, fs, "--fail must not be negative")
	case *disconnect < 0:
		return usageError(stderr, fs, "--disconnect must not be negative")
	case !ok:
		return usageError(stderr, fs, "--fail-status %d: want 400, 401, 403, 429 or 500", *failStatus)
	case isSet(fs, "fail-status") && *fail == 0:
		return usageError(stderr, fs, "--fail-status only applies with --fail")
	case *merchantKey == "" && (*mchID != "" || *merchantSerial != ""):
		return usageError(stderr, fs, "--mchid and --merchant-serial name your own merchant: give its --merchant-key too")
	case *merchantKey != "" && *mchID == "":
		return usageError(stderr, fs, "--merchant-key needs your merchant's --mchid")
	}

	platform, err := loadPlatform(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle fakeapi: %v\n", err)
		return exitFailure
	}
	merchant, signWith, err := fakeMerchant(*dir, *merchantKey, *mchID, *merchantSerial, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle fakeapi: %v\n", err)
		return exitFailure
	}
	h := bizcircletest.NewAPIHandler(platform, merchant)
	h.FailNext(*fail, failure)
	h.DisconnectNext(*disconnect)
	p := &printer{w: stdout}
	var calls atomic.Int64
	h.OnCall(func(c bizcircletest.Call) {
		calls.Add(1)
		p.printf("%s %s → %s", c.Method, c.Path, callAnswer(c))
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle fakeapi: %v\n", err)
		return exitFailure
	}
	base := "http://" + ln.Addr().String()
	// Keep-alives off: a client must not resend a call whose connection
	// --disconnect dropped, thinking the connection had gone stale.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	srv.SetKeepAlivesEnabled(false)
	pub := filepath.Join(*dir, publicKeyFile)
	p.printf(`bizcircle fakeapi: fake WeChat Pay API listening on %s (merchant %s, platform %s); Ctrl-C stops
Configure the application under test (local testing only):
  base URL             %s
  merchant ID          %s
  merchant serial      %s
  merchant private key %s
  platform public key  %s
  public key ID        %s
In Go:
  api, err := core.NewClient(ctx, option.WithWechatPayPublicKeyAuthCipher(
      %q, %q, merchantPrivateKey, %q, platformPublicKey))
  c, err := client.New(api, client.WithBaseURL(%q))`,
		base, merchant.MchID, platform.Serial, base, merchant.MchID, merchant.Serial, signWith, pub, platform.Serial,
		merchant.MchID, merchant.Serial, platform.Serial, base)
	if *fail > 0 {
		p.printf("--fail: the first %d signed calls answer %d %s", *fail, failure.Status, failure.Code)
	}
	if *disconnect > 0 {
		p.printf("--disconnect: the next %d signed calls are dropped unanswered", *disconnect)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "bizcircle fakeapi: %v\n", err)
		return exitFailure
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "bizcircle fakeapi: %v\n", err)
		return exitFailure
	}
	p.printf("bizcircle fakeapi: stopped (calls answered: %d)", calls.Load())
	return exitOK
}

// fakeMerchant returns the merchant fakeapi accepts, and where the key that
// signs as it is: the test merchant in dir (written there first if missing),
// or the merchant whose public key is in keyFile.
func fakeMerchant(dir, keyFile, mchID, serial string, stdout io.Writer) (*bizcircletest.Merchant, string, error) {
	if keyFile == "" {
		m, created, err := loadOrCreateMerchant(dir)
		if err != nil {
			return nil, "", err
		}
		if created {
			fmt.Fprintf(stdout, "bizcircle fakeapi: wrote a test merchant to %s: %s, %s, %s\n", dir, merchantKeyFile, merchantSerialFile, mchIDFile)
		}
		return m, filepath.Join(dir, merchantKeyFile), nil
	}
	pub, certSerial, err := loadMerchantPublicKey(keyFile)
	if err != nil {
		return nil, "", err
	}
	switch {
	case certSerial != "" && serial != "" && serial != certSerial:
		return nil, "", fmt.Errorf("--merchant-serial %s is not the serial of the certificate %s, %s", serial, keyFile, certSerial)
	case certSerial != "":
		serial = certSerial
	case serial == "":
		return nil, "", fmt.Errorf("%s is a key, not a certificate: give its serial with --merchant-serial", keyFile)
	}
	return &bizcircletest.Merchant{MchID: mchID, PublicKey: pub, Serial: serial}, "yours, matching " + keyFile, nil
}

// callAnswer describes the answer to c: its status, and the code and
// message of an error.
func callAnswer(c bizcircletest.Call) string {
	if c.Status == 0 {
		return "connection dropped unanswered (--disconnect)"
	}
	s := fmt.Sprint(c.Status)
	var e struct{ Code, Message string }
	if c.Status >= 400 && json.Unmarshal(c.Answer, &e) == nil && e.Code != "" {
		s += " " + e.Code + ": " + e.Message
	}
	return s
}
