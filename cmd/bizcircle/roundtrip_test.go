package main

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeygenServeSend walks through the README: keygen writes the keys,
// serve verifies with the server's half, send signs with the platform's.
func TestKeygenServeSend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r := runBinary(t, "keygen", "--dir", dir)
	if r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	mustContain(t, "keygen output", r.stdout, "public key ID  PUB_KEY_ID_", "APIv3 key", "-----BEGIN PUBLIC KEY-----", "bizcircle.New(")
	for name, perm := range map[string]fs.FileMode{privateKeyFile: 0o600, publicKeyFile: 0o644, publicKeyIDFile: 0o644, apiV3KeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("keygen did not write %s: %v", name, err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), perm)
		}
	}
	id, _ := os.ReadFile(filepath.Join(dir, publicKeyIDFile))
	if !strings.Contains(r.stdout, strings.TrimSpace(string(id))) {
		t.Errorf("keygen printed a public key ID other than the file's %s", id)
	}

	srv := startServe(t, "--dir", dir)
	send := func(t *testing.T, args ...string) result {
		t.Helper()
		return runBinary(t, append([]string{"send", "--dir", dir, "--url", srv.url}, args...)...)
	}

	t.Run("a payment is processed", func(t *testing.T) {
		r := send(t, "--amount", "8800", "--openid", "oTestOpenID")
		if r.code != 0 {
			t.Fatalf("send: %v", r)
		}
		mustContain(t, "send output", r.stdout, "sending MALL_TRANSACTION.SUCCESS", "openid=oTestOpenID", "amount=8800", "→ 204 No Content in ", "1 sent: 1 acknowledged (200/204)")
		mustContain(t, "serve output", srv.waitFor(t, "payment "), "openid=oTestOpenID", "amount=8800")
		srv.waitFor(t, "→ 204 processed MALL_TRANSACTION.SUCCESS")
	})

	t.Run("concurrent duplicates run the callback once", func(t *testing.T) {
		r := send(t, "--transaction-id", "4200000000001", "--repeat", "20", "--concurrency", "10")
		if r.code != 0 {
			t.Fatalf("send: %v", r)
		}
		if n := strings.Count(r.stdout, "→ 204 No Content"); n != 20 {
			t.Errorf("%d of 20 copies got 204:\n%s", n, r.stdout)
		}
		mustContain(t, "send output", r.stdout, "20 copies, 10 at a time", "20 sent: 20 acknowledged (200/204)")
		srv.waitFor(t, "transaction_id=4200000000001")
		for range 19 {
			srv.waitFor(t, "→ 204 duplicate MALL_TRANSACTION.SUCCESS")
		}
		for _, line := range srv.seen[len(srv.seen)-20:] {
			if strings.HasPrefix(line, "payment ") {
				t.Errorf("the callback ran twice: %s", line)
			}
		}
	})

	t.Run("a refund and an authorization are processed", func(t *testing.T) {
		r := send(t, "--event", "refund", "--refund-id", "50300000001", "--amount", "300", "--refund-amount", "100")
		if r.code != 0 {
			t.Fatalf("send refund: %v", r)
		}
		mustContain(t, "serve output", srv.waitFor(t, "refund "), "refund_id=50300000001", "refund_amount=100", "pay_amount=300")
		r = send(t, "--event", "authorization", "--code", "CARD42")
		if r.code != 0 {
			t.Fatalf("send authorization: %v", r)
		}
		mustContain(t, "serve output", srv.waitFor(t, "authorization "), "code=CARD42", "auth_type=REGISTERED_AND_AUTHORIZATION_MODE")
	})

	t.Run("fields come from a JSON file, flags override it", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "payment.json")
		os.WriteFile(file, []byte(`{"transaction_id":"4200000000777","amount":1234,"shop_name":"茶饮"}`), 0o644)
		r := send(t, "--data", file, "--amount", "4321")
		if r.code != 0 {
			t.Fatalf("send: %v", r)
		}
		mustContain(t, "serve output", srv.waitFor(t, "transaction_id=4200000000777"), "amount=4321", `shop="茶饮"`)
	})

	t.Run("a JSON file that is not JSON is an error for any event type", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "transaction.json")
		os.WriteFile(file, []byte(`{"transaction_id":`), 0o644)
		r := send(t, "--event", "TRANSACTION.SUCCESS", "--data", file)
		if r.code != exitFailure || !strings.Contains(r.stderr, file+" is not JSON") {
			t.Fatalf("want exit 1 naming the file, got %v", r)
		}
	})

	t.Run("the full name of a smart business circle event is its short name", func(t *testing.T) {
		r := send(t, "--event", "MALL_REFUND.SUCCESS", "--refund-id", "50300000002")
		if r.code != 0 {
			t.Fatalf("send: %v", r)
		}
		srv.waitFor(t, "refund_id=50300000002")
	})

	t.Run("a misspelt field in the JSON file is an error", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "payment.json")
		os.WriteFile(file, []byte(`{"ammount":1}`), 0o644)
		r := send(t, "--data", file)
		if r.code != exitFailure || !strings.Contains(r.stderr, `unknown field "ammount"`) {
			t.Fatalf("want exit 1 naming the field, got %v", r)
		}
	})

	for _, tt := range []struct{ flag, logged string }{
		{"--tamper", "signature verification failed"},
		{"--stale", "timestamp outside the tolerance window"},
	} {
		t.Run(tt.flag+" is refused with 401", func(t *testing.T) {
			r := send(t, tt.flag)
			if r.code != 0 {
				t.Fatalf("send: %v", r)
			}
			mustContain(t, "send output", r.stdout, `→ 401 Unauthorized in `, `{"code":"FAIL","message":"`+tt.logged+`"}`, "1 refused (4xx)", "ok: the endpoint refused the notification")
			mustContain(t, "serve output", srv.waitFor(t, "→ 401 rejected"), tt.logged)
		})
	}

	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d after Ctrl-C, want 0", code)
	}

	t.Run("send to a stopped server fails", func(t *testing.T) {
		r := send(t)
		if r.code != exitFailure || !strings.Contains(r.stdout, "→ error after") {
			t.Fatalf("want exit 1 with the transport error, got %v", r)
		}
	})
}

// TestSendRetry replays WeChat Pay's schedule, compressed, against a serve
// whose callbacks fail twice.
func TestSendRetry(t *testing.T) {
	dir := t.TempDir()
	if r := runBinary(t, "keygen", "--dir", dir, "--force"); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	srv := startServe(t, "--dir", dir, "--fail", "2")
	r := runBinary(t, "send", "--dir", dir, "--url", srv.url, "--retry", "--speed", "1000")
	if r.code != 0 {
		t.Fatalf("send: %v", r)
	}
	mustContain(t, "send output", r.stdout,
		"attempt 1 (+0s) → 500 Internal Server Error in ", `"message":"callback failed"`,
		"attempt 2 (+15s) → 500 Internal Server Error",
		"attempt 3 (+30s) → 204 No Content",
		"1 sent: 1 acknowledged (200/204)")
	if strings.Contains(r.stdout, "attempt 4") {
		t.Errorf("send went on after a 204:\n%s", r.stdout)
	}
	srv.waitFor(t, "→ 500 failed")
	srv.waitFor(t, "→ 500 failed")
	srv.waitFor(t, "→ 204 processed")
}

func TestKeygenKeepsExistingKeys(t *testing.T) {
	dir := t.TempDir()
	if r := runBinary(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	before, _ := os.ReadFile(filepath.Join(dir, apiV3KeyFile))
	r := runBinary(t, "keygen", "--dir", dir)
	if r.code != exitFailure || !strings.Contains(r.stderr, "already exists; use --force") {
		t.Fatalf("second keygen: want exit 1 asking for --force, got %v", r)
	}
	after, _ := os.ReadFile(filepath.Join(dir, apiV3KeyFile))
	if string(before) != string(after) {
		t.Error("keygen replaced the keys without --force")
	}
	if r := runBinary(t, "keygen", "--dir", dir, "--force"); r.code != 0 {
		t.Fatalf("keygen --force: %v", r)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, apiV3KeyFile)); string(before) == string(after) {
		t.Error("keygen --force kept the old keys")
	}
}

func TestMissingKeysSayWhatToRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing-here")
	for _, cmd := range []string{"send", "serve", "fakeapi"} {
		r := runBinary(t, cmd, "--dir", dir)
		if r.code != exitFailure || !strings.Contains(r.stderr, "run 'bizcircle keygen --dir "+dir+"' first") {
			t.Errorf("%s without keys: want exit 1 pointing at keygen, got %v", cmd, r)
		}
	}
}

// TestSendFlagsAnEndpointThatAcceptsForgeries runs send in process, under
// the race detector, against an endpoint that verifies nothing.
func TestSendFlagsAnEndpointThatAcceptsForgeries(t *testing.T) {
	dir := t.TempDir()
	if r := runInProcess(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	careless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer careless.Close()
	for _, flag := range []string{"--tamper", "--stale", "--probe", "--wrong-key"} {
		r := runInProcess(t, "send", "--dir", dir, "--url", careless.URL, flag, "--repeat", "4", "--concurrency", "4")
		if r.code != exitFailure {
			t.Errorf("send %s to an endpoint answering 200: want exit 1, got %v", flag, r)
		}
		mustContain(t, "send output", r.stdout, "4 sent: 4 acknowledged (200/204)", "FAIL: the endpoint must refuse this notification")
	}
	r := runInProcess(t, "send", "--dir", dir, "--url", careless.URL, "--events", "8", "--concurrency", "3")
	if r.code != 0 || !strings.Contains(r.stdout, "answers: 200 ×8") {
		t.Errorf("send --events 8: %v", r)
	}
	r = runInProcess(t, "send", "--dir", dir, "--url", careless.URL, "--repeat", "8", "--concurrency", "3")
	if r.code != 0 || strings.Count(r.stdout, "→ 200 OK") != 8 {
		t.Errorf("send --repeat 8: %v", r)
	}
}

// TestSendCountsOnly200And204AsAcknowledged runs send in process against
// endpoints answering one status each: WeChat Pay takes only 200 and 204 as
// received, so a 202 is a failure.
func TestSendCountsOnly200And204AsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	if r := runInProcess(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	tests := []struct {
		name   string
		status int
		code   int
		want   string
	}{
		{"200 is acknowledged", http.StatusOK, exitOK, "2 sent: 2 acknowledged (200/204), 0 refused (4xx), 0 failed"},
		{"204 is acknowledged", http.StatusNoContent, exitOK, "2 sent: 2 acknowledged (200/204), 0 refused (4xx), 0 failed"},
		{"202 is not", http.StatusAccepted, exitFailure, "2 sent: 0 acknowledged (200/204), 0 refused (4xx), 2 failed"},
		{"201 is not", http.StatusCreated, exitFailure, "2 sent: 0 acknowledged (200/204), 0 refused (4xx), 2 failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			r := runInProcess(t, "send", "--dir", dir, "--url", srv.URL, "--repeat", "2")
			if r.code != tt.code {
				t.Fatalf("want exit %d, got %v", tt.code, r)
			}
			mustContain(t, "send output", r.stdout, tt.want)
		})
	}
}
