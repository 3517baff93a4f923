package otelbizcircle

import (
	"strconv"

	"github.com/go-bizcircle/bizcircle"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
)

// kinds are the bizcircle sentinels, by their Go names.
var kinds = []struct {
	err  error
	name string
}{
	{bizcircle.ErrNotVerified, "ErrNotVerified"},
	{bizcircle.ErrCallbackPanic, "ErrCallbackPanic"},
	{bizcircle.ErrCallback, "ErrCallback"},
	{bizcircle.ErrInFlight, "ErrInFlight"},
	{bizcircle.ErrDeduper, "ErrDeduper"},
	{bizcircle.ErrBodyConsumed, "ErrBodyConsumed"},
	{bizcircle.ErrMethod, "ErrMethod"},
	{bizcircle.ErrBodyTooLarge, "ErrBodyTooLarge"},
	{bizcircle.ErrSourceIP, "ErrSourceIP"},
	{bizcircle.ErrHeader, "ErrHeader"},
	{bizcircle.ErrTimestamp, "ErrTimestamp"},
	{bizcircle.ErrSignature, "ErrSignature"},
	{bizcircle.ErrEnvelope, "ErrEnvelope"},
	{bizcircle.ErrAlgorithm, "ErrAlgorithm"},
	{bizcircle.ErrDecrypt, "ErrDecrypt"},
	{bizcircle.ErrPlaintext, "ErrPlaintext"},
}

// ErrorType returns the value of the error.type attribute for err: the Go
// name of the bizcircle sentinel err wraps, such as "ErrSignature" or
// "ErrCallback", or the name an error in its chain gives itself with a
// method
//
//	ErrorType() string
//
// as OpenTelemetry's semconv.ErrorType reads it (package queue's errors do:
// "ErrUnverified", "ErrSyncRefused"). An error answer of WeChat Pay's API (a
// wechatpay-go *core.APIError, as package client returns them) is its HTTP
// status code, such as "500", as the HTTP conventions have it. The
// outermost error that is named wins, so a callback's error that wraps a
// rejection is "ErrCallback". The value is a label from a fixed set, never
// err's text (a callback's error may hold event data). ErrorType returns ""
// for nil and "_OTHER", the conventions' fallback, for an error that names
// nothing.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	if name, _ := named(err); name != "" {
		return name
	}
	return "_OTHER"
}

// statusText returns fixed text for a span's status that names the failure
// without err's details: a bizcircle sentinel's own message, the name
// another error is known by (its text may hold data), or else unnamed.
func statusText(err error, unnamed string) string {
	name, sentinel := named(err)
	switch {
	case sentinel != nil:
		return sentinel.Error()
	case name != "":
		return name
	}
	return unnamed
}

// named walks err's tree depth-first, each error before the ones it wraps,
// and returns the first name found: a bizcircle sentinel's (with the
// sentinel), an API answer's status, or one an error gives itself.
func named(err error) (name string, sentinel error) {
	for err != nil {
		for _, k := range kinds {
			if err == k.err {
				return k.name, k.err
			}
		}
		if apiErr, ok := err.(*core.APIError); ok && apiErr.StatusCode > 0 {
			return strconv.Itoa(apiErr.StatusCode), nil
		}
		if t, ok := err.(interface{ ErrorType() string }); ok {
			if name := t.ErrorType(); name != "" {
				return name, nil
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if name, sentinel := named(e); name != "" {
					return name, sentinel
				}
			}
			return "", nil
		default:
			return "", nil
		}
	}
	return "", nil
}
