package dedupetest_test

import (
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/dedupetest"
)

func TestMemoryDeduper(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []bizcircle.Option
	}{
		{"duplicates wait for the holder", nil},
		{"duplicates get ErrInFlight at once", []bizcircle.Option{bizcircle.WithInFlightWait(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dedupetest.Run(t, dedupetest.Harness{
				New: func(t *testing.T, cfg dedupetest.Config) bizcircle.Deduper {
					d, err := bizcircle.NewMemoryDeduper(append(tc.opts, bizcircle.WithTTL(cfg.TTL))...)
					if err != nil {
						t.Fatal(err)
					}
					return d
				},
			})
		})
	}
}
