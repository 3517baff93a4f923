package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

const keygenUsage = `Usage: bizcircle keygen [--dir DIR] [--force]

Writes a test WeChat Pay platform key pair, its public key ID (PUB_KEY_ID_…)
and a fresh 32-byte APIv3 key into DIR, and prints the configuration your
server needs: the public key PEM, the public key ID and the APIv3 key.
'bizcircle serve' and 'bizcircle send' read the same directory. The keys are
for local testing only: WeChat Pay never signs with them.

DIR is made private (mode 0700) as it holds a private key. With --force the
keys are replaced by new files, never rewritten in place; keygen refuses a
DIR or key file that is a symbolic link.

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
	if err := writeKeys(*dir, p, *force, stderr); err != nil {
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

// writeKeys writes p's keys into dir, creating it. Unless force is set it
// refuses to replace existing keys, which would break a configured server.
//
// dir must not be a symlink, nor any key file in it: keygen writes no key
// where a link points. dir is made mode 0700 (a note on warn says so when it
// was open to others). Each key is written to a new file in dir, created
// with O_EXCL and mode 0600, set to its final mode, synced, and renamed over
// the old file once all four are written: a new private key is never
// readable through an old file's mode, and an old file (which another
// process may hold open or hard-link) is never written.
func writeKeys(dir string, p *bizcircletest.Platform, force bool, warn io.Writer) error {
	dir = filepath.Clean(dir)
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fi = nil
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link: keygen writes no keys through a link; pass the directory it points to", dir)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	for _, name := range keyFiles {
		path := filepath.Join(dir, name)
		kfi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !force {
			return fmt.Errorf("%s already exists; use --force to replace the keys", path)
		}
		if kfi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link: keygen writes no keys through a link; remove it first", path)
		}
		if !kfi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
	}
	if fi == nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		fmt.Fprintf(warn, "bizcircle keygen: %s was mode %#o; made it 0700 as it holds a private key\n", dir, perm)
	}
	// Also when just made: the umask may have left it other than 0700.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}

	der, err := x509.MarshalPKCS8PrivateKey(p.Key)
	if err != nil {
		return err
	}
	return replaceFiles(dir, []keyFile{
		{privateKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
		{publicKeyFile, []byte(p.PublicKeyPEM()), 0o644},
		{publicKeyIDFile, []byte(p.Serial + "\n"), 0o644},
		{apiV3KeyFile, []byte(p.APIv3Key + "\n"), 0o600},
	})
}

// A keyFile is one file of a key directory.
type keyFile struct {
	name string
	data []byte
	perm fs.FileMode
}

// replaceFiles writes each file to a new temp file in dir and renames them
// all over the old ones once every one is written.
func replaceFiles(dir string, files []keyFile) error {
	var temps []string // written, not yet renamed
	defer func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}()
	for _, f := range files {
		t, err := writeTemp(dir, f.name, f.data, f.perm)
		if err != nil {
			return err
		}
		temps = append(temps, t)
	}
	for i, f := range files {
		if err := os.Rename(temps[i], filepath.Join(dir, f.name)); err != nil {
			temps = temps[i:]
			return err
		}
	}
	temps = nil
	// Make the renames durable; not every file system can sync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writeTemp writes data to a new file in dir, named after name, and returns
// its path. os.CreateTemp opens it with O_CREATE|O_EXCL and mode 0600, so
// it is a new file nobody else can read, never one a link points to; it is
// given perm, exactly, before data is written.
func writeTemp(dir, name string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", err
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
