package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-bizcircle/bizcircle"
)

// SyncPointsRequest is a points sync (商圈积分同步): it tells WeChat Pay how
// many points a shopper's payment in the mall earned. Send one for each
// MALL_TRANSACTION.SUCCESS payment; WeChat Pay sends refund notifications
// only for payments whose points were synced. [NewSyncPointsRequest] fills
// it from a [bizcircle.PaymentEvent].
type SyncPointsRequest struct {
	// SubMchID is the mall's merchant ID, in service-provider mode only;
	// omitted when empty. At most 64 characters.
	SubMchID string
	// TransactionID is WeChat Pay's order number of the payment. Required,
	// at most 64 characters.
	TransactionID string
	// AppID is the mall's AppID that OpenID belongs to. Required, at most
	// 128 characters.
	AppID string
	// OpenID is the shopper's OpenID under AppID. Required, at most 64
	// characters.
	OpenID string
	// EarnPoints tells whether the payment earned points. Always sent, also
	// when false.
	EarnPoints bool
	// IncreasedPoints is how many points the payment earned. Always sent,
	// also when 0; must not be negative.
	IncreasedPoints int64
	// PointsUpdateTime is when the points were awarded. Required; sent as
	// RFC 3339 with milliseconds in China Standard Time, such as
	// 2020-05-20T13:29:35.120+08:00.
	PointsUpdateTime time.Time
	// NoPointsRemarks says why the payment earned no points; omitted when
	// empty. At most 128 characters.
	NoPointsRemarks string
	// TotalPoints is the shopper's points balance after this payment:
	// optional, so nil leaves it out, and Int64(0) sends a real 0. Must not
	// be negative.
	TotalPoints *int64
}

// Int64 returns a pointer to n, for [SyncPointsRequest.TotalPoints].
func Int64(n int64) *int64 { return &n }

// NewSyncPointsRequest returns the points sync for payment e: points
// awarded at time at. EarnPoints is points > 0. Set SubMchID, TotalPoints
// and NoPointsRemarks on the result as needed.
func NewSyncPointsRequest(e *bizcircle.PaymentEvent, points int64, at time.Time) SyncPointsRequest {
	return SyncPointsRequest{
		TransactionID:    e.TransactionID,
		AppID:            e.AppID,
		OpenID:           e.OpenID,
		EarnPoints:       points > 0,
		IncreasedPoints:  points,
		PointsUpdateTime: at,
	}
}

// syncPointsBody is SyncPointsRequest on the wire.
type syncPointsBody struct {
	SubMchID         string `json:"sub_mchid,omitempty"`
	TransactionID    string `json:"transaction_id"`
	AppID            string `json:"appid"`
	OpenID           string `json:"openid"`
	EarnPoints       bool   `json:"earn_points"`
	IncreasedPoints  int64  `json:"increased_points"`
	PointsUpdateTime string `json:"points_update_time"`
	NoPointsRemarks  string `json:"no_points_remarks,omitempty"`
	TotalPoints      *int64 `json:"total_points,omitempty"`
}

// MarshalJSON returns the request body WeChat Pay expects.
func (r SyncPointsRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(syncPointsBody{
		SubMchID:         r.SubMchID,
		TransactionID:    r.TransactionID,
		AppID:            r.AppID,
		OpenID:           r.OpenID,
		EarnPoints:       r.EarnPoints,
		IncreasedPoints:  r.IncreasedPoints,
		PointsUpdateTime: formatTime(r.PointsUpdateTime),
		NoPointsRemarks:  r.NoPointsRemarks,
		TotalPoints:      r.TotalPoints,
	})
}

// Validate returns a [*ValidationError] for the first field WeChat Pay would
// refuse, or nil.
func (r SyncPointsRequest) Validate() error {
	var c check
	c.optional("sub_mchid", r.SubMchID, 64)
	c.required("transaction_id", r.TransactionID, 64)
	c.required("appid", r.AppID, 128)
	c.required("openid", r.OpenID, 64)
	c.nonNegative("increased_points", r.IncreasedPoints)
	c.time("points_update_time", r.PointsUpdateTime)
	c.optional("no_points_remarks", r.NoPointsRemarks, 128)
	if r.TotalPoints != nil {
		c.nonNegative("total_points", *r.TotalPoints)
	}
	return c.result()
}

// SyncPoints sends r: POST /v3/businesscircle/points/notify, answered 204.
// It returns nil once WeChat Pay accepted the points.
func (c *Client) SyncPoints(ctx context.Context, r SyncPointsRequest) error {
	const op = "SyncPoints"
	if err := r.Validate(); err != nil {
		return &opError{op: op, err: err}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return &opError{op: op, err: err}
	}
	const path = "/v3/businesscircle/points/notify"
	return c.call(ctx, op, http.MethodPost, path, path, nil, body, nil)
}

// PointsCommitStatusRequest asks whether a shopper has purchases waiting to
// be submitted for points (待积分状态查询).
type PointsCommitStatusRequest struct {
	// OpenID is the shopper's OpenID under AppID. Required, at most 64
	// characters.
	OpenID string
	// BrandID is the mall's brand ID (品牌ID). Required.
	BrandID int64
	// AppID is the mall's AppID. Required, at most 128 characters.
	AppID string
	// SubMchID is the mall's merchant ID, in service-provider mode only;
	// omitted when empty. At most 64 characters.
	SubMchID string
}

// Validate returns a [*ValidationError] for the first field WeChat Pay would
// refuse, or nil.
func (r PointsCommitStatusRequest) Validate() error {
	var c check
	c.required("openid", r.OpenID, 64)
	c.positive("brandid", r.BrandID)
	c.required("appid", r.AppID, 128)
	c.optional("sub_mchid", r.SubMchID, 64)
	return c.result()
}

// CommitStatus is a shopper's points commit status.
type CommitStatus string

// Points commit statuses. WeChat Pay may add others: compare with these,
// and treat an unknown one as not finished.
const (
	// CommitPending: the shopper has purchases waiting to be submitted for
	// points.
	CommitPending CommitStatus = "PENDING"
	// CommitFinished: nothing is waiting.
	CommitFinished CommitStatus = "FINISHED"
)

// PointsCommitStatusResponse is the answer to a [PointsCommitStatusRequest].
type PointsCommitStatusResponse struct {
	PointsCommitStatus CommitStatus `json:"points_commit_status"`
}

// PointsCommitStatus sends r: GET
// /v3/businesscircle/users/{openid}/points/commit_status, answered 200.
func (c *Client) PointsCommitStatus(ctx context.Context, r PointsCommitStatusRequest) (*PointsCommitStatusResponse, error) {
	const op = "PointsCommitStatus"
	if err := r.Validate(); err != nil {
		return nil, &opError{op: op, err: err}
	}
	q := url.Values{
		"brandid": {strconv.FormatInt(r.BrandID, 10)},
		"appid":   {r.AppID},
	}
	if r.SubMchID != "" {
		q.Set("sub_mchid", r.SubMchID)
	}
	path := "/v3/businesscircle/users/" + url.PathEscape(r.OpenID) + "/points/commit_status"
	out := new(PointsCommitStatusResponse)
	if err := c.call(ctx, op, http.MethodGet, "/v3/businesscircle/users/{openid}/points/commit_status", path, q, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}
