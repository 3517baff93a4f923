package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// QueryAuthorizationRequest asks whether a shopper has authorized the mall's
// points service (授权查询). WeChat Pay allows 150 queries a second.
type QueryAuthorizationRequest struct {
	// OpenID is the shopper's OpenID under AppID. Required, at most 64
	// characters.
	OpenID string
	// AppID is the mall's AppID. Required, at most 128 characters.
	AppID string
	// SubMchID is the mall's merchant ID, in service-provider mode only;
	// omitted when empty. At most 64 characters.
	SubMchID string
}

// Validate returns a [*ValidationError] for the first field WeChat Pay would
// refuse, or nil.
func (r QueryAuthorizationRequest) Validate() error {
	var c check
	c.required("openid", r.OpenID, 64)
	c.required("appid", r.AppID, 128)
	c.optional("sub_mchid", r.SubMchID, 64)
	return c.result()
}

// AuthorizeState is a shopper's points authorization state.
type AuthorizeState string

// Authorization states. WeChat Pay may add others: compare with these.
const (
	// Unauthorized: the shopper never authorized points.
	Unauthorized AuthorizeState = "UNAUTHORIZED"
	// Authorized: the shopper authorized points; sync their payments.
	Authorized AuthorizeState = "AUTHORIZED"
	// Deauthorized: the shopper authorized points and then withdrew it.
	Deauthorized AuthorizeState = "DEAUTHORIZED"
)

// Authorization is the answer to a [QueryAuthorizationRequest].
type Authorization struct {
	OpenID         string
	AuthorizeState AuthorizeState
	// AuthorizeTime is when the shopper authorized points; zero when never
	// (or when WeChat Pay sent a time this package cannot read).
	AuthorizeTime time.Time
	// DeauthorizeTime is when the shopper withdrew the authorization; zero
	// when never.
	DeauthorizeTime time.Time
}

// UnmarshalJSON reads WeChat Pay's answer, leniently for the times: RFC 3339
// with or without fractional seconds; an empty or unreadable time is zero.
func (a *Authorization) UnmarshalJSON(b []byte) error {
	var w struct {
		OpenID          string `json:"openid"`
		AuthorizeState  string `json:"authorize_state"`
		AuthorizeTime   string `json:"authorize_time"`
		DeauthorizeTime string `json:"deauthorize_time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = Authorization{
		OpenID:          w.OpenID,
		AuthorizeState:  AuthorizeState(w.AuthorizeState),
		AuthorizeTime:   parseTime(w.AuthorizeTime),
		DeauthorizeTime: parseTime(w.DeauthorizeTime),
	}
	return nil
}

// QueryAuthorization sends r: GET
// /v3/businesscircle/user-authorizations/{openid}, answered 200.
func (c *Client) QueryAuthorization(ctx context.Context, r QueryAuthorizationRequest) (*Authorization, error) {
	const op = "QueryAuthorization"
	if err := r.Validate(); err != nil {
		return nil, &opError{op: op, err: err}
	}
	q := url.Values{"appid": {r.AppID}}
	if r.SubMchID != "" {
		q.Set("sub_mchid", r.SubMchID)
	}
	out := new(Authorization)
	path := "/v3/businesscircle/user-authorizations/" + url.PathEscape(r.OpenID)
	if err := c.call(ctx, op, http.MethodGet, "/v3/businesscircle/user-authorizations/{openid}", path, q, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}
