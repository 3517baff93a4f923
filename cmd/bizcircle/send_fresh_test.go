package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

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
