package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
)

// A testReceiver is an endpoint that verifies and decrypts notifications
// with the server's half of the keys in a directory, through the kit's
// Decoder, and keeps what it got. Each answer is 204, or the kit's status
// for a notification it refuses; answer, when not nil, gives the status of
// the n-th notification that verified, from 1.
type testReceiver struct {
	url    string
	answer func(n int) int

	mu       sync.Mutex
	got      []*bizcircle.Notification
	headers  []http.Header // of every request
	refusals []error
}

func newTestReceiver(t *testing.T, dir string, answer func(n int) int) *testReceiver {
	t.Helper()
	keys, err := loadServerKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := bizcircle.NewDecoder(keys.apiV3Key,
		verifiers.NewSHA256WithRSAPubkeyVerifier(keys.publicKeyID, *keys.publicKey),
		bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	r := &testReceiver{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n, err := dec.Decode(req.Context(), req.Header, body)
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		if err != nil {
			r.refusals = append(r.refusals, err)
			r.mu.Unlock()
			w.WriteHeader(bizcircle.StatusCode(err))
			return
		}
		r.got = append(r.got, n)
		status := http.StatusNoContent
		if r.answer != nil {
			status = r.answer(len(r.got))
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// received returns the notifications that verified so far.
func (r *testReceiver) received() []*bizcircle.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*bizcircle.Notification(nil), r.got...)
}

// requests returns the headers of every request so far, and the errors of
// those refused.
func (r *testReceiver) requests() ([]http.Header, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...), append([]error(nil), r.refusals...)
}

// keysDir runs keygen into a fresh directory and returns it.
func keysDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	if r := runBinary(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	return dir
}

// writeFile writes data into a fresh file and returns its path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
