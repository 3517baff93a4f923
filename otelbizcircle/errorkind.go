package otelbizcircle

import (
	"errors"

	"github.com/go-bizcircle/bizcircle"
)

// kinds is searched in order, as bizcircle.StatusCode searches: processing
// errors first, because a callback's own error may wrap a rejection error.
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

// ErrorKind returns the Go name of the bizcircle sentinel err wraps, such
// as "ErrSignature" or "ErrCallback": a label from a fixed set, never err's
// text (a callback's error may hold event data). It returns "" for nil and
// "other" for an error that wraps none of them.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// kindText returns the sentinel's own message for a span's status: fixed
// text that names the failure without err's details.
func kindText(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.err.Error()
		}
	}
	return "bizcircle: notification failed"
}
