package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// transactionJSON is a TRANSACTION.SUCCESS plaintext from WeChat Pay's
// documentation, as a developer would save it.
const transactionJSON = `{
  "transaction_id": "1217752501201407033233368018",
  "amount": {"payer_total": 100, "total": 100, "currency": "CNY", "payer_currency": "CNY"},
  "mchid": "1230000109",
  "trade_state": "SUCCESS",
  "bank_type": "CMC",
  "success_time": "2018-06-08T10:34:56+08:00",
  "payer": {"openid": "oUpF8uMuAJ2pxb1Q9zNjWUHsd"},
  "out_trade_no": "1217752501201407033233368018",
  "appid": "wxd678efh567hg6787",
  "trade_state_desc": "支付成功",
  "trade_type": "MICROPAY"
}
`

func TestSendAnyEventType(t *testing.T) {
	dir := keysDir(t)
	recv := newTestReceiver(t, dir, nil)
	file := writeFile(t, "transaction.json", transactionJSON)

	r := runBinary(t, "send", "--dir", dir, "--url", recv.url, "--event", "TRANSACTION.SUCCESS", "--data", file)
	if r.code != 0 {
		t.Fatalf("send: %v", r)
	}
	mustContain(t, "send output", r.stdout, "sending TRANSACTION.SUCCESS id=", "transaction_id=1217752501201407033233368018",
		"trade_state=SUCCESS", "→ 204 No Content in ", "1 sent: 1 acknowledged (200/204)")
	got := recv.received()
	if len(got) != 1 {
		t.Fatalf("the receiver got %d notifications, want 1", len(got))
	}
	if n := got[0]; n.EventType != "TRANSACTION.SUCCESS" || n.OriginalType != "transaction" || string(n.Plaintext) != transactionJSON {
		t.Errorf("the receiver got %s (%s) with plaintext %q, want the file as it is", n.EventType, n.OriginalType, n.Plaintext)
	}
}

func TestSendEvents(t *testing.T) {
	dir := keysDir(t)

	t.Run("twenty payments are distinct and summarized", func(t *testing.T) {
		recv := newTestReceiver(t, dir, nil)
		r := runBinary(t, "send", "--dir", dir, "--url", recv.url, "--events", "20", "--concurrency", "5")
		if r.code != 0 {
			t.Fatalf("send: %v", r)
		}
		mustContain(t, "send output", r.stdout,
			"sending 20 MALL_TRANSACTION.SUCCESS events, 5 at a time, to "+recv.url+", each with a fresh notification ID and transaction_id\n",
			"20 sent: 20 acknowledged (200/204), 0 refused (4xx), 0 failed",
			"answers: 204 ×20\n", "latency: p50 ", ", p90 ", ", p99 ", ", max ", " over 20 answers; 20 requests in ")
		if strings.Contains(r.stdout, "→") {
			t.Errorf("send printed answers that were as expected:\n%s", r.stdout)
		}
		ids, txs := map[string]bool{}, map[string]bool{}
		for _, n := range recv.received() {
			var p bizcircle.PaymentEvent
			if err := json.Unmarshal(n.Plaintext, &p); err != nil {
				t.Fatal(err)
			}
			ids[n.ID], txs[p.TransactionID] = true, true
		}
		if len(ids) != 20 || len(txs) != 20 {
			t.Errorf("%d distinct notification IDs and %d distinct transaction IDs, want 20 each", len(ids), len(txs))
		}
	})

	t.Run("events of any type get fresh business IDs", func(t *testing.T) {
		recv := newTestReceiver(t, dir, nil)
		file := writeFile(t, "transaction.json", transactionJSON)
		r := runBinary(t, "send", "--dir", dir, "--url", recv.url, "--event", "TRANSACTION.SUCCESS", "--data", file, "--events", "5")
		if r.code != 0 {
			t.Fatalf("send: %v", r)
		}
		mustContain(t, "send output", r.stdout, "each with a fresh notification ID and transaction_id, out_trade_no", "answers: 204 ×5")
		txs := map[string]bool{}
		for _, n := range recv.received() {
			var p struct {
				TransactionID string `json:"transaction_id"`
				Payer         struct{ OpenID string }
			}
			if err := json.Unmarshal(n.Plaintext, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.TransactionID) != 28 || !strings.HasPrefix(p.TransactionID, "12") || p.Payer.OpenID != "oUpF8uMuAJ2pxb1Q9zNjWUHsd" {
				t.Errorf("event %s: transaction_id %q, openid %q", n.ID, p.TransactionID, p.Payer.OpenID)
			}
			txs[p.TransactionID] = true
		}
		if len(txs) != 5 || txs["1217752501201407033233368018"] {
			t.Errorf("transaction IDs %v, want 5 fresh ones", txs)
		}
	})

	t.Run("answers other than 200 and 204 are shown and fail the run", func(t *testing.T) {
		recv := newTestReceiver(t, dir, func(n int) int {
			switch n % 4 {
			case 0:
				return http.StatusInternalServerError
			case 1:
				return http.StatusAccepted
			}
			return http.StatusOK
		})
		r := runBinary(t, "send", "--dir", dir, "--url", recv.url, "--events", "40", "--concurrency", "4")
		if r.code != exitFailure {
			t.Fatalf("want exit 1, got %v", r)
		}
		mustContain(t, "send output", r.stdout,
			"… and 10 more unexpected answers\n",
			"40 sent: 20 acknowledged (200/204), 0 refused (4xx), 20 failed",
			"answers: 200 ×20, 202 ×10, 500 ×10\n", "latency: p50 ")
		if shown := strings.Count(r.stdout, "→ 500 Internal Server Error") + strings.Count(r.stdout, "→ 202 Accepted"); shown != 10 {
			t.Errorf("send showed %d unexpected answers, want 10:\n%s", shown, r.stdout)
		}
	})
}

// TestSendForgeries sends what a receiver must refuse, built binary against
// 'bizcircle serve' (refused: exit 0) and against an endpoint that verifies
// nothing (accepted: exit 1).
func TestSendForgeries(t *testing.T) {
	dir := keysDir(t)
	srv := startServe(t, "--dir", dir)
	careless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer careless.Close()
	tests := []struct {
		flag, says, logged string
	}{
		{"--probe", "signature replaced by a WECHATPAY/SIGNTEST/ probe", "signature verification failed"},
		{"--wrong-key", "signed with a key the endpoint does not know", "signature verification failed"},
		{"--tamper", "body changed after signing", "signature verification failed"},
		{"--stale", "timestamp 10m0s old", "timestamp outside the tolerance window"},
	}
	for _, tt := range tests {
		t.Run(tt.flag+" is refused by serve", func(t *testing.T) {
			r := runBinary(t, "send", "--dir", dir, "--url", srv.url, tt.flag)
			if r.code != 0 {
				t.Fatalf("send: %v", r)
			}
			mustContain(t, "send output", r.stdout, tt.says, "→ 401 Unauthorized in ", "1 refused (4xx)", "ok: the endpoint refused the notification")
			mustContain(t, "serve output", srv.waitFor(t, "→ 401 rejected"), tt.logged)
		})
		t.Run(tt.flag+" accepted by an endpoint that verifies nothing exits 1", func(t *testing.T) {
			r := runBinary(t, "send", "--dir", dir, "--url", careless.URL, tt.flag, "--events", "3")
			if r.code != exitFailure {
				t.Fatalf("want exit 1, got %v", r)
			}
			mustContain(t, "send output", r.stdout, "event ", "→ 204 No Content", "3 sent: 3 acknowledged (200/204)", "FAIL: the endpoint must refuse this notification")
		})
	}
}

// TestSendForgeriesAreWellFormed checks, on the wire, that --probe and
// --wrong-key change only the signature.
func TestSendForgeriesAreWellFormed(t *testing.T) {
	dir := keysDir(t)
	id, err := readKeyFile(dir, publicKeyIDFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--probe", "--wrong-key"} {
		t.Run(flag+" names the receiver's public key ID and is refused as a bad signature", func(t *testing.T) {
			recv := newTestReceiver(t, dir, nil)
			if r := runBinary(t, "send", "--dir", dir, "--url", recv.url, flag); r.code != 0 {
				t.Fatalf("send: %v", r)
			}
			headers, refusals := recv.requests()
			if len(headers) != 1 || len(refusals) != 1 {
				t.Fatalf("%d requests, %d refused; want 1 and 1", len(headers), len(refusals))
			}
			h := headers[0]
			if h.Get(bizcircle.HeaderSerial) != id || h.Get(bizcircle.HeaderTimestamp) == "" || h.Get(bizcircle.HeaderNonce) == "" {
				t.Errorf("headers %v, want serial %s, a timestamp and a nonce", h, id)
			}
			sig := h.Get(bizcircle.HeaderSignature)
			if probe := strings.HasPrefix(sig, bizcircle.SignTestPrefix); probe != (flag == "--probe") {
				t.Errorf("signature %q: has the probe prefix = %v", sig, probe)
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, bizcircle.SignTestPrefix))
			if err != nil || len(raw) != 256 {
				t.Errorf("signature %q: want 256 bytes of base64 (err %v)", sig, err)
			}
			if !errors.Is(refusals[0], bizcircle.ErrSignature) {
				t.Errorf("refused with %v, want ErrSignature", refusals[0])
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"the median of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p90 of ten is the ninth", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"p99 of ten is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p0 is the smallest", ms(3, 4), 0, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestFreshIDs(t *testing.T) {
	fields := idFields("REFUND.SUCCESS")
	tests := []struct {
		name      string
		plaintext string
		changed   []string
	}{
		{"long numeric IDs keep their length and first digits", `{"refund_id":"50000000382019052709732678859","transaction_id":"1217752501201407033233368018"}`, []string{"transaction_id", "refund_id"}},
		{"short IDs get a random suffix", `{"out_refund_no":"R1"}`, []string{"out_refund_no"}},
		{"nested IDs are left alone", `{"promotion_detail":[{"coupon_id":"1"}]}`, nil},
		{"a plaintext without IDs is unchanged", `{"openid":"o1"}`, nil},
		{"a plaintext that is not an object is unchanged", `["transaction_id"]`, nil},
		{"an ID that is not a string is left alone", `{"refund_id":5}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed := freshIDs([]byte(tt.plaintext), fields)
			if strings.Join(changed, ",") != strings.Join(tt.changed, ",") {
				t.Fatalf("changed %v, want %v", changed, tt.changed)
			}
			if len(changed) == 0 {
				if !bytes.Equal(out, []byte(tt.plaintext)) {
					t.Errorf("plaintext changed to %s", out)
				}
				return
			}
			var before, after map[string]string
			json.Unmarshal([]byte(tt.plaintext), &before)
			if err := json.Unmarshal(out, &after); err != nil {
				t.Fatal(err)
			}
			for _, f := range changed {
				b, a := before[f], after[f]
				if a == b || len(a) < len(b) || a[:2] != b[:2] {
					t.Errorf("%s: %q became %q", f, b, a)
				}
			}
		})
	}
}
