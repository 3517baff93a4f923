package otelbizcircle_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

var merchant = sync.OnceValue(bizcircletest.NewMerchant)

// newAPI starts a fake WeChat Pay API, closed when the test ends, and
// returns it with a client of it traced by tel, with opts.
func (tel *telemetry) newAPI(t *testing.T, opts ...client.Option) (*bizcircletest.APIServer, *client.Client) {
	t.Helper()
	api := bizcircletest.NewAPIServer(platform, merchant())
	t.Cleanup(api.Close)
	c, err := client.New(api.NewClient(), append(opts, otelbizcircle.InstrumentClient(otelbizcircle.WithTracerProvider(tel.tp)))...)
	if err != nil {
		t.Fatal(err)
	}
	return api, c
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func syncPoints(ctx context.Context, c *client.Client) error {
	p := payment()
	return c.SyncPoints(ctx, client.NewSyncPointsRequest(&p, 2, time.Now()))
}

// clientSpan is what a test checks of a Client span.
type clientSpan struct {
	Name   string
	Attrs  map[string]string
	Status codes.Code
}

func clientSpans(spans []sdktrace.ReadOnlySpan) []clientSpan {
	var got []clientSpan
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindClient {
			got = append(got, clientSpan{s.Name(), attrMap(s.Attributes()), s.Status().Code})
		}
	}
	return got
}

func TestClientSpan(t *testing.T) {
	const notify = "https://api.mch.weixin.qq.com/v3/businesscircle/points/notify"
	post := func(extra map[string]string) map[string]string {
		attrs := map[string]string{
			"http.request.method": "POST",
			"url.full":            notify,
			"url.template":        "/v3/businesscircle/points/notify",
			"server.address":      "api.mch.weixin.qq.com",
			"server.port":         "443",
		}
		for k, v := range extra {
			attrs[k] = v
		}
		return attrs
	}
	const name = "POST /v3/businesscircle/points/notify"
	tests := []struct {
		name string
		fail func(*bizcircletest.APIServer)
		call func(context.Context, *client.Client) error
		want []clientSpan
	}{
		{"an accepted sync is one span, its status unset", func(*bizcircletest.APIServer) {}, syncPoints,
			[]clientSpan{{name, post(map[string]string{"http.response.status_code": "204"}), codes.Unset}}},
		{"a 500 is an error, and the retry a resend", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailSystemError) }, syncPoints,
			[]clientSpan{
				{name, post(map[string]string{"http.response.status_code": "500", "error.type": "500"}), codes.Error},
				{name, post(map[string]string{"http.response.status_code": "204", "http.request.resend_count": "1"}), codes.Unset},
			}},
		{"a 400 is a client span's error", func(a *bizcircletest.APIServer) { a.FailNext(1, bizcircletest.FailParamError) }, syncPoints,
			[]clientSpan{{name, post(map[string]string{"http.response.status_code": "400", "error.type": "400"}), codes.Error}}},
		{"a dropped connection has no status code", func(a *bizcircletest.APIServer) { a.DisconnectNext(1) }, syncPoints,
			[]clientSpan{
				{name, post(map[string]string{"error.type": "_OTHER"}), codes.Error},
				{name, post(map[string]string{"http.response.status_code": "204", "http.request.resend_count": "1"}), codes.Unset},
			}},
		{"an OpenID in the path is neither in the name nor in url.full", func(*bizcircletest.APIServer) {},
			func(ctx context.Context, c *client.Client) error {
				_, err := c.PointsCommitStatus(ctx, client.PointsCommitStatusRequest{OpenID: secretOpenID, BrandID: 1000, AppID: "wxd678efh567hg6787"})
				return err
			},
			[]clientSpan{{"GET /v3/businesscircle/users/{openid}/points/commit_status", map[string]string{
				"http.request.method":       "GET",
				"url.full":                  "https://api.mch.weixin.qq.com/v3/businesscircle/users/REDACTED/points/commit_status?appid=wxd678efh567hg6787&brandid=1000",
				"url.template":              "/v3/businesscircle/users/{openid}/points/commit_status",
				"server.address":            "api.mch.weixin.qq.com",
				"server.port":               "443",
				"http.response.status_code": "200",
			}, codes.Unset}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			api, c := tel.newAPI(t, client.WithRetry(client.RetryPolicy{}), client.WithSleep(noSleep))
			tt.fail(api)
			tt.call(context.Background(), c)
			got := clientSpans(tel.spans.Ended())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("client spans (-want +got):\n%s", diff)
			}
			for _, s := range got {
				for k, v := range s.Attrs {
					if strings.Contains(v, secretOpenID) {
						t.Errorf("%s=%s carries the OpenID", k, v)
					}
				}
			}
		})
	}
}
