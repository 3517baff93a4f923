package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// ParkingState is a car's movement at the mall's car park.
type ParkingState string

// Parking states.
const (
	ParkingIn  ParkingState = "IN"  // the car entered
	ParkingOut ParkingState = "OUT" // the car left
)

// SyncParkingRequest is a parking sync (停车状态同步): a shopper's car
// entered or left the mall's car park.
type SyncParkingRequest struct {
	// SubMchID is the mall's merchant ID, in service-provider mode only;
	// omitted when empty. At most 32 characters: the parking API's limit,
	// tighter than the other calls' 64.
	SubMchID string
	// BrandID is the mall's brand ID (品牌ID). Required.
	BrandID int64
	// AppID is the mall's AppID that OpenID belongs to. Required, at most 32
	// characters.
	AppID string
	// OpenID is the shopper's OpenID under AppID. Required, at most 64
	// characters.
	OpenID string
	// PlateNumber is the car's plate, such as 粤B888888. Required, at most 32
	// characters.
	PlateNumber string
	// State is ParkingIn or ParkingOut. Required.
	State ParkingState
	// Time is when the car entered or left. Required; sent as RFC 3339 with
	// milliseconds in China Standard Time.
	Time time.Time
}

// syncParkingBody is SyncParkingRequest on the wire.
type syncParkingBody struct {
	SubMchID    string `json:"sub_mchid,omitempty"`
	BrandID     int64  `json:"brandid"`
	AppID       string `json:"appid"`
	OpenID      string `json:"openid"`
	PlateNumber string `json:"plate_number"`
	State       string `json:"state"`
	Time        string `json:"time"`
}

// MarshalJSON returns the request body WeChat Pay expects.
func (r SyncParkingRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(syncParkingBody{
		SubMchID:    r.SubMchID,
		BrandID:     r.BrandID,
		AppID:       r.AppID,
		OpenID:      r.OpenID,
		PlateNumber: r.PlateNumber,
		State:       string(r.State),
		Time:        formatTime(r.Time),
	})
}

// Validate returns a [*ValidationError] for the first field WeChat Pay would
// refuse, or nil.
func (r SyncParkingRequest) Validate() error {
	var c check
	c.optional("sub_mchid", r.SubMchID, 32)
	c.positive("brandid", r.BrandID)
	c.required("appid", r.AppID, 32)
	c.required("openid", r.OpenID, 64)
	c.required("plate_number", r.PlateNumber, 32)
	c.oneOf("state", string(r.State), string(ParkingIn), string(ParkingOut))
	c.time("time", r.Time)
	return c.result()
}

// SyncParking sends r: POST /v3/businesscircle/parkings, answered 204.
func (c *Client) SyncParking(ctx context.Context, r SyncParkingRequest) error {
	const op = "SyncParking"
	if err := r.Validate(); err != nil {
		return &opError{op: op, err: err}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return &opError{op: op, err: err}
	}
	const path = "/v3/businesscircle/parkings"
	return c.call(ctx, op, http.MethodPost, path, path, nil, body, nil)
}
