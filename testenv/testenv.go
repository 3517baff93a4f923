// Package testenv holds the one rule for tests that need a real server:
// without it they skip locally, and fail under CI=true, where .ci/run always
// starts one. [Main] then says in one line what was skipped and how to run
// it, where a person running go test ./... sees it.
//
// The kit's own suites use it (its modules cannot share an internal
// package); a mall's tests against PostgreSQL or Redis may too.
package testenv

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
)

var (
	mu      sync.Mutex
	skipped = map[string]int{} // what was missing → tests skipped for it
)

// Server returns the environment variable name, the address of a test
// server. When it is unset the test skips with hint, or fails under CI=true.
func Server(t testing.TB, name, hint string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	missing(t, name, name+" is unset: "+hint)
	return ""
}

// Missing skips t because what it needs is missing, or fails it under
// CI=true.
func Missing(t testing.TB, why string) {
	t.Helper()
	missing(t, why, why)
}

func missing(t testing.TB, what, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (under CI=true this is a failure: .ci/run must provide it)")
	}
	mu.Lock()
	skipped[what]++
	mu.Unlock()
	t.Skip(why)
}

// Main runs the package's tests and exits; if any skipped for want of a
// server, it first prints one line naming what was missing and how to run
// them. go test hides a passing package's output, so the line goes to the
// terminal when there is one, else to stderr (shown with -v).
func Main(m *testing.M) {
	code := m.Run()
	Report()
	os.Exit(code)
}

// Report prints Main's line, for a TestMain of its own; it prints nothing
// when no test skipped.
func Report() {
	if line := summary(); line != "" {
		w := io.Writer(os.Stderr)
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			defer tty.Close()
			w = tty
		}
		fmt.Fprintln(w, line)
	}
}

// summary is Main's line, or "" when nothing skipped.
func summary() string {
	mu.Lock()
	defer mu.Unlock()
	if len(skipped) == 0 {
		return ""
	}
	total := 0
	var what []string
	for w, n := range skipped {
		total += n
		what = append(what, w)
	}
	sort.Strings(what)
	pkg := "this package"
	if wd, err := os.Getwd(); err == nil {
		pkg = wd[strings.LastIndexByte(wd, '/')+1:]
	}
	return fmt.Sprintf("bizcircle: %s: %d tests skipped, missing %s; run them with BIZCIRCLE_REDIS_ADDR=127.0.0.1:6379 "+
		"BIZCIRCLE_PG_URL=postgres://… go test ./..., or everything with .ci/run (README: Running the full suite)",
		pkg, total, strings.Join(what, ", "))
}
