package bizcircletest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/core/downloader"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

// TestAPIServer_certificates: wechatpay-go's downloader reads the
// certificate list, before and after a rotation.
func TestAPIServer_certificates(t *testing.T) {
	p := bizcircletest.NewCertificatePlatform()
	s := bizcircletest.NewAPIServer(p, sharedMerchant())
	defer s.Close()
	ctx := context.Background()
	d, err := downloader.NewCertificateDownloaderWithClient(ctx, s.NewClient(option.WithoutValidator()), p.APIv3Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get(ctx, p.Serial); !ok || len(d.GetAll(ctx)) != 1 {
		t.Fatalf("downloaded %v", d.GetAll(ctx))
	}
	rotated := s.Rotate()
	if rotated.APIv3Key != p.APIv3Key || rotated.Serial == p.Serial || s.Platform() != rotated {
		t.Fatal("Rotate did not add a platform with the same APIv3 key")
	}
	// The downloader now verifies answers with the old certificate and asks
	// for it in Wechatpay-Serial; the server honours that.
	if err := d.DownloadCertificates(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get(ctx, rotated.Serial); !ok || len(d.GetAll(ctx)) != 2 {
		t.Errorf("after rotation downloaded %v", d.GetAll(ctx))
	}
	if _, err := downloader.NewCertificateDownloaderWithClient(ctx, s.NewClient(option.WithoutValidator()), bizcircletest.RandomAPIv3Key()); err == nil {
		t.Error("the certificates decrypted with another APIv3 key")
	}
}

func TestAPIServer_certificatesInPublicKeyMode(t *testing.T) {
	p := bizcircletest.NewPlatform()
	s := bizcircletest.NewAPIServer(p, sharedMerchant())
	defer s.Close()
	_, err := downloader.NewCertificateDownloaderWithClient(context.Background(), s.NewClient(option.WithoutValidator()), p.APIv3Key)
	if err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Errorf("err = %v, want no certificate downloaded", err)
	}
}
