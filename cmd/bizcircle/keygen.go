package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

const keygenUsage = `Usage: bizcircle keygen [--dir DIR] [--force]

Writes a test WeChat Pay platform key pair, its public key ID (PUB_KEY_ID_…)
and a fresh 32-byte APIv3 key into DIR, and prints the configuration your
server needs: the public key PEM, the public key ID and the APIv3 key.
'bizcircle serve' and 'bizcircle send' read the same directory. The keys are
for local testing only: WeChat Pay never signs with them.

Files:
  platform_private_key.pem  signs notifications (bizcircle send only)
  platform_public_key.pem   verifies them (your server)
  public_key_id             names the key in Wechatpay-Serial (your server)
  apiv3_key                 encrypts the resource (your server)
`

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("keygen")
	dir := fs.String("dir", defaultKeyDir, "`directory` to write the keys into (created if missing)")
	force := fs.Bool("force", false, "replace keys already in the directory")
	if ok, code := parseFlags(fs, keygenUsage, args, stdout, stderr); !ok {
		return code
	}
	if *dir == "" {
		return usageError(stderr, fs, "--dir must not be empty")
	}
	p := bizcircletest.NewPlatform()
	if err := writeKeys(*dir, p, *force); err != nil {
		fmt.Fprintf(stderr, "bizcircle keygen: %v\n", err)
		return exitFailure
	}
	pub := filepath.Join(*dir, publicKeyFile)
	fmt.Fprintf(stdout, `Wrote a test platform key pair to %s:
  %-25s signs notifications: bizcircle send uses it; keep it out of your server
  %-25s your server verifies with it
  %-25s %s
  %-25s your server decrypts with it

Configure your server (local testing only):
  public key ID  %s
  APIv3 key      %s
  public key     %s
%s
In Go:
  pub, err := utils.LoadPublicKeyWithPath(%q)
  verifier := verifiers.NewSHA256WithRSAPubkeyVerifier(%q, *pub)
  h, err := bizcircle.New(%q, verifier, callbacks)

Then:
  bizcircle serve --dir %s
  bizcircle send --dir %s --url http://127.0.0.1:8080/wechat/bizcircle
`,
		*dir, privateKeyFile, publicKeyFile, publicKeyIDFile, p.Serial, apiV3KeyFile,
		p.Serial, p.APIv3Key, pub, p.PublicKeyPEM(),
		pub, p.Serial, p.APIv3Key, *dir, *dir)
	return exitOK
}
