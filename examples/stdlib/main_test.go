package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/examples/internal/routertest"
)

func TestRouter(t *testing.T) { routertest.Run(t, newRouter) }

// TestRouterSurvivesRetries replays WeChat Pay's retry schedule through the
// router with a fake clock: a callback failing three times succeeds once.
func TestRouterSurvivesRetries(t *testing.T) {
	clock := bizcircletest.NewClock(time.Now())
	wechat := bizcircletest.NewPlatform()
	wechat.Now = clock.Now
	var tries, successes int
	cb := bizcircle.CallbackFuncs{Payment: func(ctx context.Context, e *bizcircle.PaymentEvent) error {
		if tries++; tries <= 3 {
			return errors.New("points service down")
		}
		successes++
		return nil
	}}
	r, err := newRouter(wechat.APIv3Key, wechat.Verifier(), cb,
		bizcircle.WithClock(clock.Now), bizcircle.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	d := &bizcircletest.Deliverer{Platform: wechat, Sleep: clock.Sleep, Target: "/wechat/bizcircle"}
	attempts, err := d.Deliver(t.Context(), r, wechat.Payment(bizcircletest.SamplePayment()))
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 4 || attempts[3].Offset != time.Minute || successes != 1 {
		t.Errorf("%d attempts, last at +%v, %d successes; want 4, +1m0s, 1", len(attempts), attempts[len(attempts)-1].Offset, successes)
	}
}
