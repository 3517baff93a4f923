package main

import (
	"crypto/rand"
	"encoding/json"
	"strings"

	"github.com/go-bizcircle/bizcircle"
)

// idFields are the plaintext fields --events makes fresh in each event: the
// business IDs receivers dedupe on.
func idFields(eventType string) []string {
	if eventType == bizcircle.EventAuthorization {
		return []string{"code"} // the kit dedupes it on the notification ID
	}
	return []string{"transaction_id", "out_trade_no", "refund_id", "out_refund_no", "coupon_id", "order_id", "out_order_no", "complaint_id", "transfer_bill_no", "out_bill_no"}
}

// freshIDs returns plaintext with a fresh value in each of fields that is a
// top-level string of the JSON object, and the names of the fields it
// changed. Plaintext that is not a JSON object is returned as it is.
func freshIDs(plaintext []byte, fields []string) ([]byte, []string) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(plaintext, &obj) != nil || obj == nil {
		return plaintext, nil
	}
	var changed []string
	for _, f := range fields {
		var v string
		if raw, ok := obj[f]; !ok || json.Unmarshal(raw, &v) != nil || v == "" {
			continue
		}
		b, _ := json.Marshal(freshID(v))
		obj[f] = b
		changed = append(changed, f)
	}
	if len(changed) == 0 {
		return plaintext, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return plaintext, nil
	}
	return out, changed
}

// freshID returns a random ID shaped like id: as many digits with the same
// first two for WeChat Pay's long numeric IDs, else id and random digits.
func freshID(id string) string {
	if len(id) >= 16 && strings.Trim(id, "0123456789") == "" {
		return id[:2] + randomDigits(len(id)-2)
	}
	return id + "-" + randomDigits(10)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("bizcircle send: " + err.Error())
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}
