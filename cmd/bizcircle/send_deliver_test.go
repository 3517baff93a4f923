package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-bizcircle/bizcircle"
)

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
