//go:build goexperiment.boringcrypto

package bizcircle_test

import (
	"crypto/boring"
	"testing"
)

// BoringCrypto turns itself off without cgo: a run meant to measure or test
// it must fail instead of quietly testing Go's own crypto.
func TestBoringCryptoIsOn(t *testing.T) {
	if !boring.Enabled() {
		t.Fatal("built with GOEXPERIMENT=boringcrypto, but BoringCrypto is off: build with CGO_ENABLED=1 on linux/amd64 or arm64")
	}
}
