package otelbizcircle_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/otelbizcircle"
)

func TestErrorType(t *testing.T) {
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
			if got := otelbizcircle.ErrorType(fmt.Errorf("context: %w", s.err)); got != s.name {
				t.Errorf("ErrorType = %q, want %q", got, s.name)
			}
		})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil is no kind", nil, ""},
		{"an error of no sentinel is _OTHER", errors.New("boom"), "_OTHER"},
		{"a callback error wrapping a rejection is the callback's", fmt.Errorf("%w: %w", bizcircle.ErrCallback, bizcircle.ErrSignature), "ErrCallback"},
		{"an in-flight wait cut short by ctx is in-flight", fmt.Errorf("%w: %w", bizcircle.ErrInFlight, errors.New("context canceled")), "ErrInFlight"},
		{"an error of another package names itself", fmt.Errorf("job 7: %w", errUnverified), "ErrUnverified"},
		{"an error that names itself wins over the sentinel it wraps", fmt.Errorf("%w: %w", errUnverified, bizcircle.ErrSignature), "ErrUnverified"},
		{"a sentinel wins over the named error it wraps", fmt.Errorf("%w: %w", bizcircle.ErrCallback, errUnverified), "ErrCallback"},
		{"an empty name is no name", fmt.Errorf("%w: %w", selfNamed{}, bizcircle.ErrDecrypt), "ErrDecrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := otelbizcircle.ErrorType(tc.err); got != tc.want {
				t.Errorf("ErrorType = %q, want %q", got, tc.want)
			}
		})
	}
}

// selfNamed is an error of another package (such as queue's ErrUnverified)
// that names itself for error.type, as semconv.ErrorType reads it.
type selfNamed struct{ name string }

func (e selfNamed) Error() string     { return "queue: stored notification does not verify" }
func (e selfNamed) ErrorType() string { return e.name }

var errUnverified = selfNamed{"ErrUnverified"}
