package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	mallapi "github.com/go-bizcircle/bizcircle/client"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// appClient returns the client an application under test builds: its
// merchant's key and serial, the platform public key and ID from keygen's
// files, and the fake API's base URL.
func appClient(t *testing.T, dir, baseURL string, m *bizcircletest.Merchant) *mallapi.Client {
	t.Helper()
	platformKey, err := utils.LoadPublicKeyWithPath(filepath.Join(dir, publicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := readKeyFile(dir, publicKeyIDFile)
	if err != nil {
		t.Fatal(err)
	}
	api, err := core.NewClient(t.Context(), option.WithWechatPayPublicKeyAuthCipher(m.MchID, m.Serial, m.Key, keyID, platformKey))
	if err != nil {
		t.Fatal(err)
	}
	c, err := mallapi.New(api, mallapi.WithBaseURL(baseURL))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testMerchant reads the test merchant fakeapi wrote into dir, as an
// application would: with wechatpay-go's loaders.
func testMerchant(t *testing.T, dir string) *bizcircletest.Merchant {
	t.Helper()
	key, err := utils.LoadPrivateKeyWithPath(filepath.Join(dir, merchantKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	serial, err := readKeyFile(dir, merchantSerialFile)
	if err != nil {
		t.Fatal(err)
	}
	mchID, err := readKeyFile(dir, mchIDFile)
	if err != nil {
		t.Fatal(err)
	}
	return &bizcircletest.Merchant{MchID: mchID, Key: key, Serial: serial}
}

func syncPoints(t *testing.T, c *mallapi.Client) error {
	t.Helper()
	payment := bizcircletest.SamplePayment()
	return c.SyncPoints(t.Context(), mallapi.NewSyncPointsRequest(&payment, 2, time.Now()))
}

// TestFakeAPI runs 'bizcircle fakeapi' and calls it as an application does:
// through wechatpay-go's core.Client and the kit's client package.
func TestFakeAPI(t *testing.T) {
	dir := keysDir(t)
	srv := startServer(t, "fakeapi", "--dir", dir, "--fail", "1", "--disconnect", "1")
	m := testMerchant(t, dir)
	keyID, _ := readKeyFile(dir, publicKeyIDFile)
	mustContain(t, "fakeapi output", strings.Join(srv.seen, "\n"),
		"bizcircle fakeapi: wrote a test merchant to "+dir+": merchant_private_key.pem, merchant_serial, mchid",
		"listening on "+srv.url+" (merchant "+m.MchID+", platform "+keyID+")")
	mustContain(t, "fakeapi configuration", srv.waitFor(t, "--disconnect: "), "the next 1 signed calls are dropped unanswered")
	mustContain(t, "fakeapi configuration", strings.Join(srv.seen, "\n"),
		"base URL             "+srv.url,
		"merchant ID          "+m.MchID,
		"merchant serial      "+m.Serial,
		"merchant private key "+filepath.Join(dir, merchantKeyFile),
		"platform public key  "+filepath.Join(dir, publicKeyFile),
		"public key ID        "+keyID,
		`client.WithBaseURL("`+srv.url+`")`,
		"--fail: the first 1 signed calls answer 500 SYSTEM_ERROR")
	c := appClient(t, dir, srv.url, m)

	t.Run("a call from another merchant is refused and does not use up a failure", func(t *testing.T) {
		err := syncPoints(t, appClient(t, dir, srv.url, bizcircletest.NewMerchant()))
		var apiErr *core.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "SIGN_ERROR" {
			t.Fatalf("err = %v, want 401 SIGN_ERROR", err)
		}
		mustContain(t, "fakeapi output", srv.waitFor(t, "POST /v3/businesscircle/points/notify → "), "→ 401 SIGN_ERROR: 签名错误: unknown mchid")
	})
	t.Run("--fail answers the first signed call with an error", func(t *testing.T) {
		err := syncPoints(t, c)
		var apiErr *core.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Code != "SYSTEM_ERROR" {
			t.Fatalf("err = %v, want 500 SYSTEM_ERROR", err)
		}
		srv.waitFor(t, "POST /v3/businesscircle/points/notify → 500 SYSTEM_ERROR: 系统错误")
	})
	t.Run("--disconnect drops the next one", func(t *testing.T) {
		err := syncPoints(t, c)
		var apiErr *core.APIError
		if err == nil || errors.As(err, &apiErr) {
			t.Fatalf("err = %v, want a network error", err)
		}
		srv.waitFor(t, "POST /v3/businesscircle/points/notify → connection dropped unanswered")
	})
	t.Run("then the points sync is served", func(t *testing.T) {
		if err := syncPoints(t, c); err != nil {
			t.Fatal(err)
		}
		srv.waitFor(t, "POST /v3/businesscircle/points/notify → 204")
	})
	for _, line := range srv.seen {
		if strings.Contains(line, "PRIVATE KEY") || strings.Contains(line, "signature=") {
			t.Errorf("fakeapi printed a secret: %s", line)
		}
	}

	if code := srv.signal(t, syscall.SIGTERM); code != 0 {
		t.Errorf("fakeapi exited %d after SIGTERM, want 0", code)
	}
	mustContain(t, "fakeapi output", srv.seen[len(srv.seen)-1], "stopped (calls answered: 4)")

	t.Run("the next run keeps the test merchant", func(t *testing.T) {
		again := startServer(t, "fakeapi", "--dir", dir)
		if strings.Contains(strings.Join(again.seen, "\n"), "wrote a test merchant") {
			t.Errorf("fakeapi replaced the test merchant:\n%s", strings.Join(again.seen, "\n"))
		}
		if err := syncPoints(t, appClient(t, dir, again.url, m)); err != nil {
			t.Fatal(err)
		}
		again.waitFor(t, "POST /v3/businesscircle/points/notify → 204")
	})
}

// TestFakeAPIWithYourMerchant gives fakeapi a merchant's own certificate: it
// accepts that merchant's calls, and writes no test merchant.
func TestFakeAPIWithYourMerchant(t *testing.T) {
	dir := keysDir(t)
	cert := bizcircletest.NewCertificatePlatform() // a self-signed certificate, like apiclient_cert.pem
	certFile := writeFile(t, "apiclient_cert.pem", cert.CertificatePEM())
	m := &bizcircletest.Merchant{MchID: "1900000001", Key: cert.Key, Serial: cert.Serial}

	srv := startServer(t, "fakeapi", "--dir", dir, "--merchant-key", certFile, "--mchid", m.MchID)
	mustContain(t, "fakeapi configuration", srv.waitFor(t, "merchant private key"), "yours, matching "+certFile)
	if err := syncPoints(t, appClient(t, dir, srv.url, m)); err != nil {
		t.Fatal(err)
	}
	srv.waitFor(t, "POST /v3/businesscircle/points/notify → 204")
	if _, err := os.Stat(filepath.Join(dir, merchantKeyFile)); err == nil {
		t.Error("fakeapi wrote a test merchant although it was given one")
	}
}

func TestLoadMerchantPublicKey(t *testing.T) {
	cert := bizcircletest.NewCertificatePlatform()
	m := bizcircletest.NewMerchant()
	dir := t.TempDir()
	if err := writeMerchant(dir, m); err != nil {
		t.Fatal(err)
	}
	privateKey, _ := os.ReadFile(filepath.Join(dir, merchantKeyFile))
	tests := []struct {
		name    string
		pem     string
		key     any
		serial  string
		wantErr string
	}{
		{"a certificate gives its key and serial", cert.CertificatePEM(), &cert.Key.PublicKey, cert.Serial, ""},
		{"a public key gives no serial", cert.PublicKeyPEM(), &cert.Key.PublicKey, "", ""},
		{"a private key gives its public key", string(privateKey), &m.Key.PublicKey, "", ""},
		{"anything else is an error", "hello", nil, "", "not a PEM certificate, RSA public key or PKCS #8 RSA private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, serial, err := loadMerchantPublicKey(writeFile(t, "key.pem", tt.pem))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !key.Equal(tt.key) || serial != tt.serial {
				t.Errorf("got serial %q and another key, want %q", serial, tt.serial)
			}
		})
	}
}

func TestPartialTestMerchantIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := writeMerchant(dir, bizcircletest.NewMerchant()); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, mchIDFile))
	_, _, err := loadOrCreateMerchant(dir)
	if err == nil || !strings.Contains(err.Error(), "partial test merchant: no mchid") {
		t.Fatalf("err = %v, want a partial test merchant", err)
	}
}

// TestFakeAPIInProcess runs fakeapi in process, under the race detector,
// and stops it by ending its context.
func TestFakeAPIInProcess(t *testing.T) {
	dir := t.TempDir()
	if r := runInProcess(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"fakeapi", "--addr", "127.0.0.1:0", "--dir", dir}, pw, io.Discard)
		pw.Close()
		done <- code
	}()
	lines := bufio.NewScanner(pr)
	next := func(substr string) string {
		t.Helper()
		for lines.Scan() {
			if strings.Contains(lines.Text(), substr) {
				return lines.Text()
			}
		}
		t.Fatalf("fakeapi ended without printing %q", substr)
		return ""
	}
	line := next("listening on ")
	url := strings.Fields(line[strings.Index(line, "listening on ")+len("listening on "):])[0]
	c := appClient(t, dir, url, testMerchant(t, dir))
	errc := make(chan error, 1)
	go func() { errc <- syncPoints(t, c) }()
	next("POST /v3/businesscircle/points/notify → 204")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	cancel()
	next("bizcircle fakeapi: stopped (calls answered: 1)")
	go io.Copy(io.Discard, pr)
	if code := <-done; code != 0 {
		t.Errorf("fakeapi exited %d, want 0", code)
	}
}
