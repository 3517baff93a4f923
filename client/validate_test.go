package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/client"
)

func TestValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	points := func(edit func(*client.SyncPointsRequest)) func(context.Context, *client.Client) error {
		r := validPoints()
		edit(&r)
		return func(ctx context.Context, c *client.Client) error { return c.SyncPoints(ctx, r) }
	}
	auth := func(edit func(*client.QueryAuthorizationRequest)) func(context.Context, *client.Client) error {
		r := validAuthorization()
		edit(&r)
		return func(ctx context.Context, c *client.Client) error {
			_, err := c.QueryAuthorization(ctx, r)
			return err
		}
	}
	commit := func(edit func(*client.PointsCommitStatusRequest)) func(context.Context, *client.Client) error {
		r := validCommitStatus()
		edit(&r)
		return func(ctx context.Context, c *client.Client) error {
			_, err := c.PointsCommitStatus(ctx, r)
			return err
		}
	}
	parking := func(edit func(*client.SyncParkingRequest)) func(context.Context, *client.Client) error {
		r := validParking()
		edit(&r)
		return func(ctx context.Context, c *client.Client) error { return c.SyncParking(ctx, r) }
	}
	const (
		required = "is required"
		negative = "must not be negative"
		positive = "must be positive"
	)
	tests := []struct {
		name          string
		call          func(context.Context, *client.Client) error
		field, reason string
	}{
		// SyncPoints
		{"points: sub_mchid over 64", points(func(r *client.SyncPointsRequest) { r.SubMchID = long(65) }), "sub_mchid", "is longer than 64 characters"},
		{"points: no transaction_id", points(func(r *client.SyncPointsRequest) { r.TransactionID = "" }), "transaction_id", required},
		{"points: blank transaction_id", points(func(r *client.SyncPointsRequest) { r.TransactionID = "  " }), "transaction_id", required},
		{"points: transaction_id over 64", points(func(r *client.SyncPointsRequest) { r.TransactionID = long(65) }), "transaction_id", "is longer than 64 characters"},
		{"points: no appid", points(func(r *client.SyncPointsRequest) { r.AppID = "" }), "appid", required},
		{"points: appid over 128", points(func(r *client.SyncPointsRequest) { r.AppID = long(129) }), "appid", "is longer than 128 characters"},
		{"points: no openid", points(func(r *client.SyncPointsRequest) { r.OpenID = "" }), "openid", required},
		{"points: openid over 64", points(func(r *client.SyncPointsRequest) { r.OpenID = long(65) }), "openid", "is longer than 64 characters"},
		{"points: negative increased_points", points(func(r *client.SyncPointsRequest) { r.IncreasedPoints = -1 }), "increased_points", negative},
		{"points: no points_update_time", points(func(r *client.SyncPointsRequest) { r.PointsUpdateTime = time.Time{} }), "points_update_time", required},
		{"points: no_points_remarks over 128 characters", points(func(r *client.SyncPointsRequest) { r.NoPointsRemarks = strings.Repeat("无", 129) }), "no_points_remarks", "is longer than 128 characters"},
		{"points: negative total_points", points(func(r *client.SyncPointsRequest) { r.TotalPoints = client.Int64(-1) }), "total_points", negative},
		{"points: the first bad field is named", points(func(r *client.SyncPointsRequest) { r.OpenID, r.AppID = "", "" }), "appid", required},
		// QueryAuthorization
		{"authorization: no openid", auth(func(r *client.QueryAuthorizationRequest) { r.OpenID = "" }), "openid", required},
		{"authorization: openid over 64", auth(func(r *client.QueryAuthorizationRequest) { r.OpenID = long(65) }), "openid", "is longer than 64 characters"},
		{"authorization: no appid", auth(func(r *client.QueryAuthorizationRequest) { r.AppID = "" }), "appid", required},
		{"authorization: sub_mchid over 64", auth(func(r *client.QueryAuthorizationRequest) { r.SubMchID = long(65) }), "sub_mchid", "is longer than 64 characters"},
		// PointsCommitStatus
		{"commit status: no openid", commit(func(r *client.PointsCommitStatusRequest) { r.OpenID = "" }), "openid", required},
		{"commit status: no brandid", commit(func(r *client.PointsCommitStatusRequest) { r.BrandID = 0 }), "brandid", positive},
		{"commit status: negative brandid", commit(func(r *client.PointsCommitStatusRequest) { r.BrandID = -5 }), "brandid", positive},
		{"commit status: no appid", commit(func(r *client.PointsCommitStatusRequest) { r.AppID = "" }), "appid", required},
		{"commit status: sub_mchid over 64", commit(func(r *client.PointsCommitStatusRequest) { r.SubMchID = long(65) }), "sub_mchid", "is longer than 64 characters"},
		// SyncParking
		{"parking: sub_mchid over 32", parking(func(r *client.SyncParkingRequest) { r.SubMchID = long(33) }), "sub_mchid", "is longer than 32 characters"},
		{"parking: no brandid", parking(func(r *client.SyncParkingRequest) { r.BrandID = 0 }), "brandid", positive},
		{"parking: no appid", parking(func(r *client.SyncParkingRequest) { r.AppID = "" }), "appid", required},
		{"parking: appid over 32", parking(func(r *client.SyncParkingRequest) { r.AppID = long(33) }), "appid", "is longer than 32 characters"},
		{"parking: no openid", parking(func(r *client.SyncParkingRequest) { r.OpenID = "" }), "openid", required},
		{"parking: openid over 64", parking(func(r *client.SyncParkingRequest) { r.OpenID = long(65) }), "openid", "is longer than 64 characters"},
		{"parking: no plate_number", parking(func(r *client.SyncParkingRequest) { r.PlateNumber = "" }), "plate_number", required},
		{"parking: plate_number over 32 characters", parking(func(r *client.SyncParkingRequest) { r.PlateNumber = strings.Repeat("粤", 33) }), "plate_number", "is longer than 32 characters"},
		{"parking: no state", parking(func(r *client.SyncParkingRequest) { r.State = "" }), "state", required},
		{"parking: unknown state", parking(func(r *client.SyncParkingRequest) { r.State = "in" }), "state", "must be IN or OUT"},
		{"parking: no time", parking(func(r *client.SyncParkingRequest) { r.Time = time.Time{} }), "time", required},
	}
	srv, c := newFake(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(context.Background(), c)
			var ve *client.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field || ve.Reason != tt.reason {
				t.Errorf("got %s %q, want %s %q", ve.Field, ve.Reason, tt.field, tt.reason)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "client: ") || !strings.Contains(msg, tt.field) {
				t.Errorf("message %q does not name the field", msg)
			}
		})
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("invalid requests made %d calls, want 0", n)
	}
}

// TestValidation_limitsCountCharacters: a limit is in characters, so a
// Chinese value of exactly the limit passes.
func TestValidation_limitsCountCharacters(t *testing.T) {
	r := validPoints()
	r.NoPointsRemarks = strings.Repeat("无", 128)
	if err := r.Validate(); err != nil {
		t.Error(err)
	}
	p := validParking()
	p.PlateNumber = strings.Repeat("粤", 32)
	p.SubMchID = strings.Repeat("1", 32)
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
}
