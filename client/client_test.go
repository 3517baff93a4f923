package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/client"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
)

// Keys are slow to make: the tests share one platform and one merchant,
// and never change them.
var (
	sharedPlatform = sync.OnceValue(bizcircletest.NewCertificatePlatform)
	sharedMerchant = sync.OnceValue(bizcircletest.NewMerchant)
)

// newFake starts a fake API server and a Client that calls it.
func newFake(t *testing.T, opts ...client.Option) (*bizcircletest.APIServer, *client.Client) {
	t.Helper()
	srv := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	t.Cleanup(srv.Close)
	c, err := client.New(srv.NewClient(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func onlyCall(t *testing.T, srv *bizcircletest.APIServer) bizcircletest.Call {
	t.Helper()
	calls := srv.Calls()
	if len(calls) != 1 {
		t.Fatalf("server got %d calls, want 1", len(calls))
	}
	return calls[0]
}

// pointsTime is 2020-05-20T13:29:35.120+08:00, given in UTC to check the
// zone conversion.
var pointsTime = time.Date(2020, 5, 20, 5, 29, 35, 120e6, time.UTC)

func TestSyncPoints(t *testing.T) {
	tests := []struct {
		name string
		req  client.SyncPointsRequest
		want string
	}{
		{
			name: "no points: earn_points false, increased_points 0 and total_points 0 are sent",
			req: client.SyncPointsRequest{
				TransactionID:    "4200000001202005201234567890",
				AppID:            "wxd678efh567hg6787",
				OpenID:           "oUpF8uMuAJ2pxb1Q9zNjWUHsd",
				EarnPoints:       false,
				IncreasedPoints:  0,
				PointsUpdateTime: pointsTime,
				TotalPoints:      client.Int64(0),
			},
			want: `{"transaction_id":"4200000001202005201234567890","appid":"wxd678efh567hg6787",` +
				`"openid":"oUpF8uMuAJ2pxb1Q9zNjWUHsd","earn_points":false,"increased_points":0,` +
				`"points_update_time":"2020-05-20T13:29:35.120+08:00","total_points":0}`,
		},
		{
			name: "service-provider mode with remarks, no total",
			req: client.SyncPointsRequest{
				SubMchID:         "1900000109",
				TransactionID:    "4200000001202005201234567890",
				AppID:            "wxd678efh567hg6787",
				OpenID:           "oUpF8uMuAJ2pxb1Q9zNjWUHsd",
				EarnPoints:       true,
				IncreasedPoints:  100,
				PointsUpdateTime: pointsTime.Truncate(time.Second),
				NoPointsRemarks:  "无",
			},
			want: `{"sub_mchid":"1900000109","transaction_id":"4200000001202005201234567890",` +
				`"appid":"wxd678efh567hg6787","openid":"oUpF8uMuAJ2pxb1Q9zNjWUHsd","earn_points":true,` +
				`"increased_points":100,"points_update_time":"2020-05-20T13:29:35.000+08:00","no_points_remarks":"无"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newFake(t)
			if err := c.SyncPoints(context.Background(), tt.req); err != nil {
				t.Fatal(err)
			}
			call := onlyCall(t, srv)
			if call.Method != http.MethodPost || call.Path != bizcircletest.PathPointsNotify || call.Status != http.StatusNoContent {
				t.Errorf("call = %s %s → %d", call.Method, call.Path, call.Status)
			}
			if string(call.Body) != tt.want {
				t.Errorf("body\n got %s\nwant %s", call.Body, tt.want)
			}
			if call.Host != "api.mch.weixin.qq.com" {
				t.Errorf("host = %q", call.Host)
			}
		})
	}
}

func TestNewSyncPointsRequest(t *testing.T) {
	e := bizcircletest.SamplePayment()
	for _, points := range []int64{0, 2} {
		r := client.NewSyncPointsRequest(&e, points, pointsTime)
		want := client.SyncPointsRequest{
			TransactionID: e.TransactionID, AppID: e.AppID, OpenID: e.OpenID,
			EarnPoints: points > 0, IncreasedPoints: points, PointsUpdateTime: pointsTime,
		}
		if r != want {
			t.Errorf("points %d: got %+v, want %+v", points, r, want)
		}
	}
}

func TestQueryAuthorization(t *testing.T) {
	srv, c := newFake(t)
	at := time.Date(2020, 5, 20, 13, 29, 35, 0, time.FixedZone("CST", 8*3600))
	srv.SetAuthorization("oUpF8uMuAJ2pxb1Q9zNjWUHsd", bizcircletest.UserAuthorization{State: "AUTHORIZED", AuthorizeTime: at})
	got, err := c.QueryAuthorization(context.Background(), client.QueryAuthorizationRequest{
		OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd", AppID: "wxd678efh567hg6787", SubMchID: "1900000109",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.OpenID != "oUpF8uMuAJ2pxb1Q9zNjWUHsd" || got.AuthorizeState != client.Authorized ||
		!got.AuthorizeTime.Equal(at) || !got.DeauthorizeTime.IsZero() {
		t.Errorf("got %+v", got)
	}
	call := onlyCall(t, srv)
	if call.Method != http.MethodGet || call.Path != "/v3/businesscircle/user-authorizations/oUpF8uMuAJ2pxb1Q9zNjWUHsd" ||
		call.Query.Encode() != "appid=wxd678efh567hg6787&sub_mchid=1900000109" || call.Body != nil {
		t.Errorf("call = %s %s?%s %q", call.Method, call.Path, call.Query.Encode(), call.Body)
	}
}

func TestQueryAuthorization_unauthorizedAndDeauthorized(t *testing.T) {
	srv, c := newFake(t)
	ctx := context.Background()
	got, err := c.QueryAuthorization(ctx, client.QueryAuthorizationRequest{OpenID: "o-never", AppID: "wx1"})
	if err != nil || got.AuthorizeState != client.Unauthorized || !got.AuthorizeTime.IsZero() {
		t.Errorf("never authorized: %+v, %v", got, err)
	}
	if q := onlyCall(t, srv).Query.Encode(); q != "appid=wx1" {
		t.Errorf("query = %s, want no sub_mchid", q)
	}
	on, off := time.Unix(1590000000, 0), time.Unix(1590003600, 0)
	srv.SetAuthorization("o-gone", bizcircletest.UserAuthorization{State: "DEAUTHORIZED", AuthorizeTime: on, DeauthorizeTime: off})
	got, err = c.QueryAuthorization(ctx, client.QueryAuthorizationRequest{OpenID: "o-gone", AppID: "wx1"})
	if err != nil || got.AuthorizeState != client.Deauthorized || !got.AuthorizeTime.Equal(on) || !got.DeauthorizeTime.Equal(off) {
		t.Errorf("deauthorized: %+v, %v", got, err)
	}
}

func TestAuthorization_UnmarshalJSON(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Time
	}{
		{"RFC 3339", `{"authorize_time":"2020-05-20T13:29:35+08:00"}`, time.Unix(1589952575, 0)},
		{"fractional seconds", `{"authorize_time":"2020-05-20T13:29:35.120+08:00"}`, time.Unix(1589952575, 120e6)},
		{"space-separated China time", `{"authorize_time":"2020-05-20 13:29:35"}`, time.Unix(1589952575, 0)},
		{"empty", `{"authorize_time":""}`, time.Time{}},
		{"absent", `{}`, time.Time{}},
		{"unreadable", `{"authorize_time":"yesterday"}`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a client.Authorization
			if err := a.UnmarshalJSON([]byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			if !a.AuthorizeTime.Equal(tt.want) {
				t.Errorf("got %v, want %v", a.AuthorizeTime, tt.want)
			}
		})
	}
}

func TestPointsCommitStatus(t *testing.T) {
	srv, c := newFake(t)
	srv.SetCommitStatus("oUpF8uMuAJ2pxb1Q9zNjWUHsd", "PENDING")
	got, err := c.PointsCommitStatus(context.Background(), client.PointsCommitStatusRequest{
		OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd", BrandID: 1000, AppID: "wxd678efh567hg6787",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.PointsCommitStatus != client.CommitPending {
		t.Errorf("status = %q", got.PointsCommitStatus)
	}
	call := onlyCall(t, srv)
	if call.Method != http.MethodGet || call.Path != "/v3/businesscircle/users/oUpF8uMuAJ2pxb1Q9zNjWUHsd/points/commit_status" ||
		call.Query.Encode() != "appid=wxd678efh567hg6787&brandid=1000" {
		t.Errorf("call = %s %s?%s", call.Method, call.Path, call.Query.Encode())
	}
	got, err = c.PointsCommitStatus(context.Background(), client.PointsCommitStatusRequest{
		OpenID: "o-other", BrandID: 1000, AppID: "wx1", SubMchID: "1900000109",
	})
	if err != nil || got.PointsCommitStatus != client.CommitFinished {
		t.Errorf("other shopper: %+v, %v", got, err)
	}
	if q := srv.Calls()[1].Query.Get("sub_mchid"); q != "1900000109" {
		t.Errorf("sub_mchid = %q", q)
	}
}

func TestPathParametersAreEscaped(t *testing.T) {
	srv, c := newFake(t)
	const openid = "o/../x y?z#%"
	const escaped = "o%2F..%2Fx%20y%3Fz%23%25"
	ctx := context.Background()
	a, err := c.QueryAuthorization(ctx, client.QueryAuthorizationRequest{OpenID: openid, AppID: "wx1"})
	if err != nil {
		t.Fatal(err)
	}
	if a.OpenID != openid {
		t.Errorf("server read openid %q", a.OpenID)
	}
	if _, err := c.PointsCommitStatus(ctx, client.PointsCommitStatusRequest{OpenID: openid, BrandID: 1, AppID: "wx1"}); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	if want := bizcircletest.PathUserAuthorizations + escaped; calls[0].Path != want {
		t.Errorf("path = %s, want %s", calls[0].Path, want)
	}
	if want := bizcircletest.PathUsers + escaped + "/points/commit_status"; calls[1].Path != want {
		t.Errorf("path = %s, want %s", calls[1].Path, want)
	}
}

func TestSyncParking(t *testing.T) {
	srv, c := newFake(t)
	err := c.SyncParking(context.Background(), client.SyncParkingRequest{
		SubMchID: "1900000109", BrandID: 1000, AppID: "wxd678efh567hg6787", OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd",
		PlateNumber: "粤B888888", State: client.ParkingIn, Time: pointsTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	call := onlyCall(t, srv)
	want := `{"sub_mchid":"1900000109","brandid":1000,"appid":"wxd678efh567hg6787",` +
		`"openid":"oUpF8uMuAJ2pxb1Q9zNjWUHsd","plate_number":"粤B888888","state":"IN",` +
		`"time":"2020-05-20T13:29:35.120+08:00"}`
	if call.Method != http.MethodPost || call.Path != bizcircletest.PathParkings || call.Status != http.StatusNoContent {
		t.Errorf("call = %s %s → %d", call.Method, call.Path, call.Status)
	}
	if string(call.Body) != want {
		t.Errorf("body\n got %s\nwant %s", call.Body, want)
	}
}

func TestNew_options(t *testing.T) {
	srv := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	defer srv.Close()
	api := srv.NewClient()
	tests := []struct {
		name string
		api  *core.Client
		opts []client.Option
	}{
		{"nil core.Client", nil, nil},
		{"base URL with a path", api, []client.Option{client.WithBaseURL("https://api.mch.weixin.qq.com/v3")}},
		{"relative base URL", api, []client.Option{client.WithBaseURL("api.mch.weixin.qq.com")}},
		{"base URL with a query", api, []client.Option{client.WithBaseURL("https://h?x=1")}},
		{"negative attempts", api, []client.Option{client.WithRetry(client.RetryPolicy{MaxAttempts: -1})}},
		{"negative delay", api, []client.Option{client.WithRetry(client.RetryPolicy{BaseDelay: -1})}},
		{"negative MaxRetryAfter", api, []client.Option{client.WithRetry(client.RetryPolicy{MaxRetryAfter: -time.Second})}},
		{"nil sleep", api, []client.Option{client.WithSleep(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := client.New(tt.api, tt.opts...); err == nil || c != nil || !strings.HasPrefix(err.Error(), "client: ") {
				t.Errorf("New = %v, %v; want an error", c, err)
			}
		})
	}
}

func TestWithBaseURL(t *testing.T) {
	srv, c := newFake(t, client.WithBaseURL("https://api2.mch.weixin.qq.com/"))
	if err := c.SyncParking(context.Background(), validParking()); err != nil {
		t.Fatal(err)
	}
	if call := onlyCall(t, srv); call.Host != "api2.mch.weixin.qq.com" || call.Path != bizcircletest.PathParkings {
		t.Errorf("called %s%s", call.Host, call.Path)
	}
}

// TestResponseSignatureIsVerified checks that answers pass through
// wechatpay-go's validation: a client that trusts another platform refuses
// them, and does not retry.
func TestResponseSignatureIsVerified(t *testing.T) {
	srv := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	defer srv.Close()
	other := bizcircletest.NewPlatform()
	api := srv.NewClient(option.WithVerifier(other.Verifier()))
	c, err := client.New(api, client.WithRetry(client.RetryPolicy{}), client.WithSleep(noSleep))
	if err != nil {
		t.Fatal(err)
	}
	err = c.SyncPoints(context.Background(), validPoints())
	if err == nil || !strings.Contains(err.Error(), "client: SyncPoints: validate verify fail") {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.Calls()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func validPoints() client.SyncPointsRequest {
	return client.SyncPointsRequest{
		TransactionID: "4200000001202005201234567890", AppID: "wxd678efh567hg6787",
		OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd", EarnPoints: true, IncreasedPoints: 2, PointsUpdateTime: pointsTime,
	}
}

func validParking() client.SyncParkingRequest {
	return client.SyncParkingRequest{
		BrandID: 1000, AppID: "wxd678efh567hg6787", OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd",
		PlateNumber: "粤B888888", State: client.ParkingOut, Time: pointsTime,
	}
}

func validAuthorization() client.QueryAuthorizationRequest {
	return client.QueryAuthorizationRequest{OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd", AppID: "wxd678efh567hg6787"}
}

func validCommitStatus() client.PointsCommitStatusRequest {
	return client.PointsCommitStatusRequest{OpenID: "oUpF8uMuAJ2pxb1Q9zNjWUHsd", BrandID: 1000, AppID: "wxd678efh567hg6787"}
}

// methods calls each API method with a valid request.
var methods = []struct {
	name string
	call func(context.Context, *client.Client) error
}{
	{"SyncPoints", func(ctx context.Context, c *client.Client) error { return c.SyncPoints(ctx, validPoints()) }},
	{"QueryAuthorization", func(ctx context.Context, c *client.Client) error {
		_, err := c.QueryAuthorization(ctx, validAuthorization())
		return err
	}},
	{"PointsCommitStatus", func(ctx context.Context, c *client.Client) error {
		_, err := c.PointsCommitStatus(ctx, validCommitStatus())
		return err
	}},
	{"SyncParking", func(ctx context.Context, c *client.Client) error { return c.SyncParking(ctx, validParking()) }},
}

func TestAPIErrors(t *testing.T) {
	failures := []bizcircletest.Failure{
		bizcircletest.FailParamError,
		bizcircletest.FailFrequencyLimited,
		bizcircletest.FailSystemError,
		{Status: http.StatusForbidden, Code: "NO_AUTH", Message: "商户无权限"},
	}
	for _, m := range methods {
		for _, f := range failures {
			t.Run(m.name+" answered "+f.Code, func(t *testing.T) {
				srv, c := newFake(t)
				srv.FailNext(1, f)
				err := m.call(context.Background(), c)
				var apiErr *core.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("err = %v, want a *core.APIError", err)
				}
				if apiErr.StatusCode != f.Status || apiErr.Code != f.Code || apiErr.Message != f.Message {
					t.Errorf("APIError = %d %s %s", apiErr.StatusCode, apiErr.Code, apiErr.Message)
				}
				want := "client: " + m.name + ": WeChat Pay answered " + f.Code
				if got := err.Error(); !strings.HasPrefix(got, "client: "+m.name+": WeChat Pay answered ") ||
					!strings.Contains(got, f.Code) || strings.Contains(got, "\n") {
					t.Errorf("message %q, want one line like %q", got, want)
				}
				if n := len(srv.Calls()); n != 1 {
					t.Errorf("%d calls without WithRetry, want 1", n)
				}
			})
		}
	}
}

// TestAPIErrors_signError: a request signed with a key the server does not
// know is refused 401 SIGN_ERROR, as WeChat Pay does.
func TestAPIErrors_signError(t *testing.T) {
	srv := bizcircletest.NewAPIServer(sharedPlatform(), sharedMerchant())
	defer srv.Close()
	impostor := *sharedMerchant()
	impostor.Key = bizcircletest.NewMerchant().Key
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			c, err := client.New(srv.NewClient(impostor.Credential()))
			if err != nil {
				t.Fatal(err)
			}
			err = m.call(context.Background(), c)
			var apiErr *core.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "SIGN_ERROR" {
				t.Errorf("err = %v, want 401 SIGN_ERROR", err)
			}
		})
	}
}
