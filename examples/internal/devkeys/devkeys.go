// Package devkeys loads the test keys that 'bizcircle keygen' writes, and runs
// the example programs with them against 'bizcircle send'. In production, load your
// merchant's APIv3 key and WeChat Pay public key (or platform certificates)
// from your own configuration instead.
package devkeys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// DefaultDir is where 'bizcircle keygen' writes by default.
const DefaultDir = "bizcircle-keys"

// Load returns the APIv3 key and a public-key verifier from the files
// 'bizcircle keygen --dir dir' wrote: the server's half of the keys.
func Load(dir string) (apiV3Key string, verifier auth.Verifier, err error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("devkeys: %w (run 'go run ./cmd/bizcircle keygen' in the repository root, then pass --keys with its directory)", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	id, err := read("public_key_id")
	if err != nil {
		return "", nil, err
	}
	if apiV3Key, err = read("apiv3_key"); err != nil {
		return "", nil, err
	}
	pub, err := utils.LoadPublicKeyWithPath(filepath.Join(dir, "platform_public_key.pem"))
	if err != nil {
		return "", nil, fmt.Errorf("devkeys: %w", err)
	}
	return apiV3Key, verifiers.NewSHA256WithRSAPubkeyVerifier(id, *pub), nil
}
