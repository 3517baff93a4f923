package dedupetest_test

import (
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/dedupetest"
)

// A package that implements a Deduper runs the suite from one of its tests,
// here for the in-memory deduper. A deduper on a shared store also sets
// Shared, and one with leases sets Crash. (Not run: Run needs a *testing.T.)
func Example() {
	// In a _test.go file: func TestConformance(t *testing.T) { … }
	testConformance := func(t *testing.T) {
		dedupetest.Run(t, dedupetest.Harness{
			New: func(t *testing.T, cfg dedupetest.Config) bizcircle.Deduper {
				d, err := bizcircle.NewMemoryDeduper(bizcircle.WithTTL(cfg.TTL))
				if err != nil {
					t.Fatal(err)
				}
				return d
			},
		})
	}
	_ = testConformance
}
