package main

import (
	"crypto/rsa"
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
