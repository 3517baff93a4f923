package testenv

import (
	"strings"
	"testing"
)

func TestSummaryNamesWhatWasMissing(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("BIZCIRCLE_TESTENV_NOPE", "")
	mu.Lock()
	clear(skipped)
	mu.Unlock()
	if s := summary(); s != "" {
		t.Fatalf("Summary before any skip = %q", s)
	}
	for range 2 {
		t.Run("needs a server", func(t *testing.T) { Server(t, "BIZCIRCLE_TESTENV_NOPE", "start one") })
	}
	s := summary()
	for _, want := range []string{"testenv: 2 tests skipped", "missing BIZCIRCLE_TESTENV_NOPE", ".ci/run"} {
		if !strings.Contains(s, want) {
			t.Errorf("Summary %q lacks %q", s, want)
		}
	}
	mu.Lock()
	clear(skipped)
	mu.Unlock()
}
