package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/google/go-cmp/cmp"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// sent is what a Hook saw of one request.
type sent struct {
	Info   client.RequestInfo
	Status int
	Code   string // WeChat Pay's error code, "network" for no answer
}

// requestLog is a Hook that records each request.
type requestLog struct {
	mu   sync.Mutex
	seen []sent
}

func (l *requestLog) hook() client.Hook {
	return client.Hook{Request: func(ctx context.Context, r client.RequestInfo, send func(context.Context) (int, error)) {
		status, err := send(ctx)
		s := sent{Info: r, Status: status}
		if apiErr := (*core.APIError)(nil); errors.As(err, &apiErr) {
			s.Code = apiErr.Code
		} else if err != nil {
			s.Code = "network"
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seen = append(l.seen, s)
	}}
}

const openID = "oUpF8uMuAJ2pxb1Q9zNjWUHsd"

func TestHookSeesEachRequest(t *testing.T) {
	syncPoints := func(ctx context.Context, c *client.Client) error {
		return c.SyncPoints(ctx, client.SyncPointsRequest{TransactionID: "4200000001", AppID: "wxd678efh567hg6787",
			OpenID: openID, EarnPoints: true, IncreasedPoints: 2, PointsUpdateTime: pointsTime})
	}
	sync := func(attempt int) client.RequestInfo {
		return client.RequestInfo{Operation: "SyncPoints", Method: http.MethodPost, Attempt: attempt,
			URL: "https://api.mch.weixin.qq.com/v3/businesscircle/points/notify", Template: "/v3/businesscircle/points/notify"}
	}
	tests := []struct {
		name string
		fail func(*bizcircletest.APIServer)
		call func(context.Context, *client.Client) error
		want []sent
	}{
		{"an accepted sync is one request", func(*bizcircletest.APIServer) {}, syncPoints,
			[]sent{{sync(1), http.StatusNoContent, ""}}},
		{"a sync answered 500, then accepted, is two requests", func(s *bizcircletest.APIServer) { s.FailNext(1, bizcircletest.FailSystemError) }, syncPoints,
			[]sent{{sync(1), http.StatusInternalServerError, "SYSTEM_ERROR"}, {sync(2), http.StatusNoContent, ""}}},
		{"a refused sync is one request with WeChat Pay's 400", func(s *bizcircletest.APIServer) { s.FailNext(1, bizcircletest.FailParamError) }, syncPoints,
			[]sent{{sync(1), http.StatusBadRequest, "PARAM_ERROR"}}},
		{"a dropped connection has no status", func(s *bizcircletest.APIServer) { s.DisconnectNext(1) }, syncPoints,
			[]sent{{sync(1), 0, "network"}, {sync(2), http.StatusNoContent, ""}}},
		{"the OpenID in a path is redacted", func(*bizcircletest.APIServer) {},
			func(ctx context.Context, c *client.Client) error {
				_, err := c.PointsCommitStatus(ctx, client.PointsCommitStatusRequest{OpenID: openID, BrandID: 1000, AppID: "wxd678efh567hg6787"})
				return err
			},
			[]sent{{client.RequestInfo{Operation: "PointsCommitStatus", Method: http.MethodGet, Attempt: 1,
				URL:      "https://api.mch.weixin.qq.com/v3/businesscircle/users/REDACTED/points/commit_status?appid=wxd678efh567hg6787&brandid=1000",
				Template: "/v3/businesscircle/users/{openid}/points/commit_status"}, http.StatusOK, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &requestLog{}
			srv, c := newFake(t, client.WithRetry(client.RetryPolicy{}), client.WithSleep(noSleep), client.WithHook(log.hook()))
			tt.fail(srv)
			err := tt.call(context.Background(), c)
			if last := tt.want[len(tt.want)-1]; (err == nil) != (last.Code == "") {
				t.Errorf("call error %v, want one only when the last request failed", err)
			}
			if diff := cmp.Diff(tt.want, log.seen); diff != "" {
				t.Errorf("requests the hook saw (-want +got):\n%s", diff)
			}
			for _, s := range log.seen {
				if strings.Contains(s.Info.URL, openID) {
					t.Errorf("URL %s carries the OpenID", s.Info.URL)
				}
			}
		})
	}
}

type hookKey struct{}

// Hooks nest, the first outermost, each sending with the ctx it was given
// or derived; a hook that does not call send still has the request sent,
// once.
func TestHooksNest(t *testing.T) {
	var order []string
	outer := client.Hook{Request: func(ctx context.Context, _ client.RequestInfo, send func(context.Context) (int, error)) {
		order = append(order, "outer")
		send(context.WithValue(ctx, hookKey{}, "outer's"))
		send(ctx) // a second call sends nothing
	}}
	inner := client.Hook{Request: func(ctx context.Context, _ client.RequestInfo, send func(context.Context) (int, error)) {
		v, _ := ctx.Value(hookKey{}).(string)
		order = append(order, "inner in "+v+" ctx")
		send(ctx)
	}}
	silent := client.Hook{Request: func(context.Context, client.RequestInfo, func(context.Context) (int, error)) {
		order = append(order, "silent")
	}}
	srv, c := newFake(t, client.WithHook(outer), client.WithHook(inner), client.WithHook(silent))
	err := c.SyncPoints(context.Background(), client.SyncPointsRequest{TransactionID: "4200000001", AppID: "wx1",
		OpenID: openID, PointsUpdateTime: pointsTime})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"outer", "inner in outer's ctx", "silent"}, order); diff != "" {
		t.Errorf("hooks ran (-want +got):\n%s", diff)
	}
	if n := len(srv.Calls()); n != 1 {
		t.Errorf("%d requests sent, want 1", n)
	}
}

func TestSyncResultString(t *testing.T) {
	for r, want := range map[client.SyncResult]string{
		client.SyncSent: "sent", client.SyncRetried: "retried", client.SyncRefused: "refused",
		client.SyncDiscarded: "discarded", 0: "unknown", 9: "unknown",
	} {
		if got := r.String(); got != want {
			t.Errorf("SyncResult(%d).String() = %q, want %q", r, got, want)
		}
	}
}
