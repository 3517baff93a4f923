package bizcircle_test

import (
	"context"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

func TestSeveralMerchantsOnOneURL(t *testing.T) {
	// Two merchants: each its own WeChat Pay platform key and APIv3 key.
	a, b, stranger := platform, otherKey, bizcircletest.NewPlatform()
	stranger.Now = fixedClock
	var got []string
	h := bizcircle.MultiVerifier(a.Verifier(), b.Verifier())
	endpoint, err := bizcircle.New(a.APIv3Key, h, bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		n, _ := bizcircle.NotificationFromContext(ctx)
		got = append(got, n.Serial+"/"+string(rune('0'+n.KeyIndex)))
		return nil
	}}, bizcircle.WithAPIv3Keys(b.APIv3Key), bizcircle.WithClock(fixedClock), bizcircle.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := bizcircletest.SamplePayment(), bizcircletest.SamplePayment()
	pb.TransactionID += "b"
	for _, tc := range []struct {
		m    *bizcircletest.Message
		want int
	}{{a.Payment(pa), 204}, {b.Payment(pb), 204}, {stranger.Payment(pb), 401}} { // a stranger's key: refused
		if w := serve(endpoint, tc.m.Request("/notify")); w.Code != tc.want {
			t.Errorf("status %d, want %d", w.Code, tc.want)
		}
	}
	want := []string{a.Serial + "/0", b.Serial + "/1"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v", got, want)
	}
	if s, _ := h.GetSerial(context.Background()); s != a.Serial {
		t.Errorf("GetSerial = %q, want the first verifier's", s)
	}
}
