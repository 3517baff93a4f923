package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// The key directory that keygen writes and serve and send read.
const (
	defaultKeyDir = "bizcircle-keys"
	// privateKeyFile signs notifications: only send uses it, as only WeChat
	// Pay holds the real one.
	privateKeyFile = "platform_private_key.pem"
	// publicKeyFile, publicKeyIDFile and apiV3KeyFile are what a merchant's
	// server is configured with.
	publicKeyFile   = "platform_public_key.pem"
	publicKeyIDFile = "public_key_id"
	apiV3KeyFile    = "apiv3_key"
)

var keyFiles = []string{privateKeyFile, publicKeyFile, publicKeyIDFile, apiV3KeyFile}

// The test merchant that fakeapi keeps in the key directory: the
// application under test signs its API calls with it, as a mall signs with
// its merchant API key (apiclient_key.pem) and certificate serial.
const (
	merchantKeyFile    = "merchant_private_key.pem"
	merchantSerialFile = "merchant_serial"
	mchIDFile          = "mchid"
)

var merchantFiles = []string{merchantKeyFile, merchantSerialFile, mchIDFile}

// loadOrCreateMerchant reads the test merchant in dir, first writing a fresh
// one when dir has none of its files; created reports that. Some files
// without the others are an error.
func loadOrCreateMerchant(dir string) (m *bizcircletest.Merchant, created bool, err error) {
	var missing []string
	for _, name := range merchantFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, name)
		}
	}
	switch len(missing) {
	case len(merchantFiles):
		m = bizcircletest.NewMerchant()
		if err := writeMerchant(dir, m); err != nil {
			return nil, false, err
		}
		return m, true, nil
	case 0:
	default:
		return nil, false, fmt.Errorf("%s has a partial test merchant: no %s; remove its %s to make a fresh one",
			dir, strings.Join(missing, ", "), strings.Join(merchantFiles, ", "))
	}
	m = &bizcircletest.Merchant{}
	pemText, err := readKeyFile(dir, merchantKeyFile)
	if err != nil {
		return nil, false, err
	}
	if m.Key, err = utils.LoadPrivateKey(pemText); err != nil {
		return nil, false, fmt.Errorf("%s: not a PKCS #8 RSA private key PEM", filepath.Join(dir, merchantKeyFile))
	}
	if m.Serial, err = readKeyFile(dir, merchantSerialFile); err != nil {
		return nil, false, err
	}
	if m.MchID, err = readKeyFile(dir, mchIDFile); err != nil {
		return nil, false, err
	}
	if m.Serial == "" || m.MchID == "" {
		return nil, false, fmt.Errorf("%s: empty %s or %s", dir, merchantSerialFile, mchIDFile)
	}
	return m, false, nil
}

// writeMerchant writes m's private key, serial and merchant ID into dir,
// creating it.
func writeMerchant(dir string, m *bizcircletest.Merchant) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(m.Key)
	if err != nil {
		return err
	}
	return replaceFiles(dir, []keyFile{ // as keygen does: new files, never old ones rewritten
		{merchantKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
		{merchantSerialFile, []byte(m.Serial + "\n"), 0o644},
		{mchIDFile, []byte(m.MchID + "\n"), 0o644},
	})
}

// loadMerchantPublicKey reads a merchant's public key from a PEM file: its
// merchant API certificate (apiclient_cert.pem), which also gives the
// serial, a public key, or its private key (apiclient_key.pem). serial is ""
// unless the file is a certificate.
func loadMerchantPublicKey(path string) (key *rsa.PublicKey, serial string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	text := string(b)
	if cert, err := utils.LoadCertificate(text); err == nil {
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, "", fmt.Errorf("%s: not an RSA certificate", path)
		}
		return pub, utils.GetCertificateSerialNumber(*cert), nil
	}
	if pub, err := utils.LoadPublicKey(text); err == nil {
		return pub, "", nil
	}
	if priv, err := utils.LoadPrivateKey(text); err == nil {
		return &priv.PublicKey, "", nil
	}
	return nil, "", fmt.Errorf("%s: not a PEM certificate, RSA public key or PKCS #8 RSA private key", path)
}

// serverKeys is what a merchant's server holds: the platform public key,
// its ID and the APIv3 key.
type serverKeys struct {
	publicKey   *rsa.PublicKey
	publicKeyID string
	apiV3Key    string
}

// loadServerKeys reads the server's half of the keys in dir.
func loadServerKeys(dir string) (serverKeys, error) {
	var k serverKeys
	pemText, err := readKeyFile(dir, publicKeyFile)
	if err != nil {
		return k, err
	}
	if k.publicKey, err = utils.LoadPublicKey(pemText); err != nil {
		return k, fmt.Errorf("%s: not an RSA public key PEM", filepath.Join(dir, publicKeyFile))
	}
	if k.publicKeyID, k.apiV3Key, err = loadIDAndAPIv3Key(dir); err != nil {
		return k, err
	}
	return k, nil
}

// loadPlatform reads all the keys in dir into a test platform that signs
// with the private key.
func loadPlatform(dir string) (*bizcircletest.Platform, error) {
	pemText, err := readKeyFile(dir, privateKeyFile)
	if err != nil {
		return nil, err
	}
	key, err := utils.LoadPrivateKey(pemText)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PKCS #8 RSA private key PEM", filepath.Join(dir, privateKeyFile))
	}
	id, apiV3Key, err := loadIDAndAPIv3Key(dir)
	if err != nil {
		return nil, err
	}
	return &bizcircletest.Platform{Key: key, Serial: id, APIv3Key: apiV3Key, Now: time.Now}, nil
}

func loadIDAndAPIv3Key(dir string) (id, apiV3Key string, err error) {
	if id, err = readKeyFile(dir, publicKeyIDFile); err != nil {
		return "", "", err
	}
	if !strings.HasPrefix(id, "PUB_KEY_ID_") {
		return "", "", fmt.Errorf("%s: not a PUB_KEY_ID_… public key ID", filepath.Join(dir, publicKeyIDFile))
	}
	if apiV3Key, err = readKeyFile(dir, apiV3KeyFile); err != nil {
		return "", "", err
	}
	if len(apiV3Key) != 32 {
		return "", "", fmt.Errorf("%s: an APIv3 key is 32 bytes, this one is %d", filepath.Join(dir, apiV3KeyFile), len(apiV3Key))
	}
	return id, apiV3Key, nil
}

// readKeyFile returns a key file's content without surrounding space. A
// missing file says how to make it.
func readKeyFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no %s in %s: run 'bizcircle keygen --dir %s' first", name, dir, dir)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
