package main

import "testing"

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
