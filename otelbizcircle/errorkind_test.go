package otelbizcircle_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
)

func TestErrorKind(t *testing.T) {
	sentinels := []struct {
		err  error
		name string
	}{
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
		{bizcircle.ErrNotVerified, "ErrNotVerified"},
		{bizcircle.ErrCallback, "ErrCallback"},
		{bizcircle.ErrCallbackPanic, "ErrCallbackPanic"},
		{bizcircle.ErrDeduper, "ErrDeduper"},
		{bizcircle.ErrInFlight, "ErrInFlight"},
		{bizcircle.ErrBodyConsumed, "ErrBodyConsumed"},
	}
	for _, s := range sentinels {
		t.Run("a wrapped "+s.name+" is named", func(t *testing.T) {
			if got := otelbizcircle.ErrorKind(fmt.Errorf("context: %w", s.err)); got != s.name {
				t.Errorf("ErrorKind = %q, want %q", got, s.name)
			}
		})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil is no kind", nil, ""},
		{"an error of no sentinel is other", errors.New("boom"), "other"},
		{"a callback error wrapping a rejection is the callback's", fmt.Errorf("%w: %w", bizcircle.ErrCallback, bizcircle.ErrSignature), "ErrCallback"},
		{"an in-flight wait cut short by ctx is in-flight", fmt.Errorf("%w: %w", bizcircle.ErrInFlight, errors.New("context canceled")), "ErrInFlight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := otelbizcircle.ErrorKind(tc.err); got != tc.want {
				t.Errorf("ErrorKind = %q, want %q", got, tc.want)
			}
		})
	}
}
