// Package testenv holds the one rule for tests that need a real server:
// without it they skip locally, and fail under CI=true, where .ci/run always
// starts one.
package testenv

import (
	"os"
	"testing"
)

// Server returns the environment variable name, the address of a test
// server. When it is unset the test skips with hint, or fails under CI=true.
func Server(t testing.TB, name, hint string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	Missing(t, name+" is unset: "+hint)
	return ""
}

// Missing skips t because what it needs is missing, or fails it under
// CI=true.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (under CI=true this is a failure: .ci/run must provide it)")
	}
	t.Skip(why)
}
