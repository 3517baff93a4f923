// Package dedupetest is a conformance suite for implementations of
// [bizcircle.Deduper]: the in-memory one, redisdedupe, pgdedupe, and any a user
// writes. [Run] checks one rule per subtest against fresh dedupers built by a
// [Harness], so every implementation passes the same tests unchanged.
//
// The suite works in real time with short durations (see [Config]), because a
// deduper backed by a server keeps time on the server. It takes a few seconds
// per implementation.
//
// # Example
//
// In the test file of a package that implements a Deduper:
//
//	func TestConformance(t *testing.T) {
//		dedupetest.Run(t, dedupetest.Harness{
//			New: func(t *testing.T, cfg dedupetest.Config) bizcircle.Deduper {
//				return mydedupe.New(db,
//					mydedupe.WithPrefix(cfg.Namespace),
//					mydedupe.WithTTL(cfg.TTL),
//					mydedupe.WithLease(cfg.Lease))
//			},
//			Shared: true, // two New calls with one Config share keys
//			Crash: func(t *testing.T, cfg dedupetest.Config, d bizcircle.Deduper, key string) {
//				// Claim key as a process that then dies; see Harness.Crash.
//			},
//		})
//	}
package dedupetest

import (
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
)

// Config is what the suite asks of one Deduper under test. The suite picks
// the values; the [Harness] builds a deduper that follows them.
type Config struct {
	// Namespace is a fresh string of lower-case ASCII letters, digits and
	// underscores, starting with a letter and at most 54 bytes long (a valid
	// SQL identifier), unique to one subtest. Dedupers built with different namespaces must
	// not see each other's keys; use it as a key prefix, a table name or
	// similar. A harness that makes a new empty store on every call may
	// ignore it.
	Namespace string

	// TTL is how long a completed key must be remembered: a minute, so no
	// key expires during a rule on a loaded machine, except in the TTL rule,
	// where it is half a second so the suite can watch the key expire.
	TTL time.Duration

	// Lease is how long a claim outlives a holder that stopped renewing it
	// (see [Harness.Crash]). Implementations without leases ignore it.
	Lease time.Duration
}

// Harness tells [Run] how to build and break the Deduper under test.
type Harness struct {
	// New returns a new Deduper following cfg. It is called at least once
	// per subtest, with a fresh cfg.Namespace; it may use t for t.Cleanup
	// and t.Fatal. Required.
	New func(t *testing.T, cfg Config) bizcircle.Deduper

	// Shared reports that Dedupers returned by New for equal Configs share
	// one store, as replicas of a service in separate processes do. The
	// suite then spreads concurrent callers over two of them and checks
	// that each sees the other's keys. Leave it false for an in-process
	// deduper such as [bizcircle.MemoryDeduper].
	Shared bool

	// Crash, if set, simulates a holder that died mid-callback: it must
	// leave key claimed in d's store (d was built by New with cfg) by a
	// delivery that never renews or releases its claim, as a process that
	// crashed would, and return once the claim is in place. The claim must
	// lapse cfg.Lease after it was made, so that the next caller runs the
	// callback. A nil Crash skips the lost-lease rule: leave it nil for
	// implementations without leases.
	Crash func(t *testing.T, cfg Config, d bizcircle.Deduper, key string)
}

// Durations the suite hands to [Harness.New] through [Config]. They leave
// room for a loaded CI machine running the race detector: a lease renewal
// (every lease/3) must not miss, and a completed key must not expire while
// a rule still expects it remembered.
const (
	suiteTTL   = time.Minute
	shortTTL   = 500 * time.Millisecond // the TTL rule only
	suiteLease = time.Second
)

// Run checks that the dedupers h builds follow the [bizcircle.Deduper]
// contract, one subtest per rule:
//
//   - a fresh key runs fn (ran true, fn's ctx carries the caller's values);
//     a completed key does not (ran false, err nil);
//   - fn runs once for 100 concurrent callers of one key;
//   - an error from fn is returned (errors.Is) and releases the key, so a
//     retry runs fn;
//   - a panic in fn releases the key and propagates to the caller;
//   - a completed key stays completed for its TTL and expires after it;
//   - a context cancelled before Do does not run fn;
//   - an in-flight duplicate gets [bizcircle.ErrInFlight] or waits for the
//     holder's outcome, bounded by its context, and fn never runs twice at
//     once;
//   - a slow callback keeps its claim past the lease;
//   - a lost lease (a crashed holder) lets the next caller run fn, if
//     [Harness.Crash] is set;
//   - different keys are independent, including keys that are prefixes of
//     each other, differ in case, hold punctuation, spaces, newlines or
//     Chinese, or are 1000 bytes long;
//   - with [Harness.Shared], replicas see each other's completed and
//     in-flight keys.
//
// Run calls t.Fatal if h.New is nil.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("dedupetest: Harness.New is nil")
	}
	s := &suite{h: h}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) { r.test(t, s) })
	}
}

// suite builds dedupers for the rules.
type suite struct {
	h Harness
}

// config returns a Config with a namespace unique to t.
func (s *suite) config(t *testing.T) Config {
	name := nonWord.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	ns := "dt_" + strings.ToLower(strings.Trim(name, "_")) + "_" + strings.ToLower(rand.Text()[:10])
	return Config{Namespace: ns, TTL: suiteTTL, Lease: suiteLease}
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// replicas returns n dedupers for cfg; they share one store if the harness
// says so, otherwise they are all the same deduper.
func (s *suite) replicas(t *testing.T, cfg Config, n int) []bizcircle.Deduper {
	t.Helper()
	ds := make([]bizcircle.Deduper, n)
	for i := range ds {
		if i == 0 || s.h.Shared {
			ds[i] = s.h.New(t, cfg)
		} else {
			ds[i] = ds[0]
		}
		if ds[i] == nil {
			t.Fatal("dedupetest: Harness.New returned nil")
		}
	}
	return ds
}

// one returns a single fresh deduper and its config.
func (s *suite) one(t *testing.T) (bizcircle.Deduper, Config) {
	t.Helper()
	cfg := s.config(t)
	return s.replicas(t, cfg, 1)[0], cfg
}
