package bizcircle_test

import (
	"context"
	"slices"
	"testing"

	"github.com/go-bizcircle/bizcircle"
)

// OptionNames names every option, in order, including the generic On and
// options with invalid values (their errors are the constructors').
func TestOptionNames(t *testing.T) {
	type coupon struct{ ID string }
	opts := []bizcircle.Option{
		bizcircle.WithLogger(nil),
		bizcircle.On("COUPON.USED", func(e *coupon) string { return e.ID }, func(context.Context, *coupon) error { return nil }),
		bizcircle.WithTTL(0),
		bizcircle.WithDeduper(nil),
		bizcircle.OnUnknown(nil),
	}
	want := []string{"WithLogger", "On", "WithTTL", "WithDeduper", "OnUnknown"}
	if got := bizcircle.OptionNames(opts...); !slices.Equal(got, want) {
		t.Errorf("OptionNames = %q, want %q", got, want)
	}
	if got := bizcircle.OptionNames(); len(got) != 0 {
		t.Errorf("OptionNames() = %q, want none", got)
	}
}
