package main

import (
	"github.com/go-bizcircle/bizcircle/testenv"

	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the command, built once by TestMain: the tests run it as a
// developer does.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bizcircle-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bizcircle")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	testenv.Report()
	os.Exit(code)
}

// result is a finished command's exit code and output.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the built command with args.
func runBinary(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("bizcircle %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// runInProcess calls run directly, for tests under the race detector.
func runInProcess(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// mustContain fails unless s holds each of want, in order.
func mustContain(t *testing.T, what, s string, want ...string) {
	t.Helper()
	rest := s
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%s lacks %q (in order) in:\n%s", what, w, s)
		}
		rest = rest[i+len(w):]
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Usage:", "demo", "fakeapi", "keygen", "send", "serve"}},
		{[]string{"-h"}, []string{"Commands:"}},
		{[]string{"help"}, []string{"Commands:"}},
		{[]string{"help", "send"}, []string{"Usage: bizcircle send", "-retry"}},
		{[]string{"demo", "--help"}, []string{"Usage: bizcircle demo", "Exits 0"}},
		{[]string{"keygen", "--help"}, []string{"Usage: bizcircle keygen", "-dir", "-force"}},
		{[]string{"send", "--help"}, []string{"Usage: bizcircle send", "TRANSACTION.SUCCESS", "--events N", "15s 15s 30s", "--probe", "--wrong-key",
			"-concurrency", "-data", "-event", "-events", "-probe", "-repeat", "-retry", "-speed", "-stale", "-tamper", "-url", "-wrong-key"}},
		{[]string{"fakeapi", "--help"}, []string{"Usage: bizcircle fakeapi", "/v3/businesscircle/points/notify", "SIGN_ERROR", "merchant_private_key.pem", "apiclient_cert.pem",
			"-addr", "127.0.0.1:8081", "-dir", "-disconnect", "-fail", "-fail-status", "-mchid", "-merchant-key", "-merchant-serial"}},
		{[]string{"serve", "-help"}, []string{"Usage: bizcircle serve", "-addr", "127.0.0.1:8080", "-dir", "-fail", "-path"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" prints usage and exits 0", func(t *testing.T) {
			r := runBinary(t, tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("want exit 0 and nothing on stderr, got %v", r)
			}
			mustContain(t, "stdout", r.stdout, tt.want...)
		})
	}
}

func TestBadCommandLines(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // on stderr
	}{
		{"no command", nil, "Usage:"},
		{"an unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"an unknown flag", []string{"send", "--bogus"}, "flag provided but not defined: -bogus"},
		{"a malformed number", []string{"send", "--amount", "lots"}, `invalid value "lots" for flag -amount`},
		{"a stray argument", []string{"keygen", "extra"}, `unexpected argument "extra"`},
		{"an unknown flag on demo", []string{"demo", "--fast"}, "flag provided but not defined: -fast"},
		{"an unknown event", []string{"send", "--event", "shipment"}, `--event "shipment"`},
		{"a URL that is not http", []string{"send", "--url", "ftp://example.com/"}, "want an http:// or https:// URL"},
		{"zero copies", []string{"send", "--repeat", "0"}, "--repeat must be at least 1"},
		{"zero concurrency", []string{"send", "--concurrency", "0"}, "--concurrency must be at least 1"},
		{"speed without retry", []string{"send", "--speed", "100"}, "--speed only applies with --retry"},
		{"a zero speed", []string{"send", "--retry", "--speed", "0"}, "--speed must be a positive number"},
		{"tamper with retry", []string{"send", "--tamper", "--retry"}, "--tamper, --stale, --probe and --wrong-key must never get"},
		{"stale with retry", []string{"send", "--stale", "--retry"}, "--tamper, --stale, --probe and --wrong-key must never get"},
		{"probe with retry", []string{"send", "--probe", "--retry"}, "--tamper, --stale, --probe and --wrong-key must never get"},
		{"wrong key with retry", []string{"send", "--wrong-key", "--retry"}, "--tamper, --stale, --probe and --wrong-key must never get"},
		{"tamper with stale", []string{"send", "--tamper", "--stale"}, "use only one of --tamper, --stale, --probe and --wrong-key"},
		{"probe with wrong key", []string{"send", "--probe", "--wrong-key"}, "use only one of --tamper, --stale, --probe and --wrong-key"},
		{"an event type in lower case", []string{"send", "--event", "transaction.success"}, `--event "transaction.success": want payment, refund, authorization or a WeChat Pay event type`},
		{"an event type without data", []string{"send", "--event", "TRANSACTION.SUCCESS"}, "--event TRANSACTION.SUCCESS needs --data"},
		{"a payment field on another event type", []string{"send", "--event", "REFUND.SUCCESS", "--data", "x.json", "--amount", "5"}, "--amount applies to payment, refund notifications, not REFUND.SUCCESS"},
		{"zero events", []string{"send", "--events", "0"}, "--events must be at least 1"},
		{"events with repeat", []string{"send", "--events", "5", "--repeat", "5"}, "use one of --repeat (copies of one notification) and --events (distinct events)"},
		{"a refund field on a payment", []string{"send", "--refund-id", "503"}, "--refund-id applies to refund notifications, not payment"},
		{"a payment field on an authorization", []string{"send", "--event", "authorization", "--amount", "5"}, "--amount applies to payment, refund notifications"},
		{"a path without a slash", []string{"serve", "--path", "notify"}, `--path "notify" must start with /`},
		{"a negative failure count", []string{"serve", "--fail", "-1"}, "--fail must not be negative"},
		{"an empty key directory", []string{"keygen", "--dir", ""}, "--dir must not be empty"},
		{"a negative fake API failure count", []string{"fakeapi", "--fail", "-1"}, "--fail must not be negative"},
		{"a negative disconnect count", []string{"fakeapi", "--disconnect", "-1"}, "--disconnect must not be negative"},
		{"a failure status WeChat Pay does not give", []string{"fakeapi", "--fail", "1", "--fail-status", "418"}, "--fail-status 418: want 400, 401, 403, 429 or 500"},
		{"a failure status without failures", []string{"fakeapi", "--fail-status", "429"}, "--fail-status only applies with --fail"},
		{"a merchant ID without its key", []string{"fakeapi", "--mchid", "1900000001"}, "give its --merchant-key too"},
		{"a merchant key without its ID", []string{"fakeapi", "--merchant-key", "apiclient_cert.pem"}, "--merchant-key needs your merchant's --mchid"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" exits 2 with a message", func(t *testing.T) {
			r := runBinary(t, tt.args...)
			if r.code != exitUsage {
				t.Fatalf("want exit 2, got %v", r)
			}
			mustContain(t, "stderr", r.stderr, tt.want)
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestDemo(t *testing.T) {
	r := runBinary(t, "demo")
	if r.code != 0 {
		t.Fatalf("demo: %v", r)
	}
	mustContain(t, "demo output", r.stdout,
		"bizcircle demo:", "http://127.0.0.1:",
		"1. payment, 2.00 yuan", "→ 204 No Content | processed: awarded 2 points to oUpF8uMu… (balance 2)",
		"2. the same payment again (duplicate)", "→ 204 No Content | duplicate: no callback ran",
		"3. refund of it, 2.00 yuan", "→ 204 No Content | processed: took back 2 points from oUpF8uMu… (balance 0)",
		"4. payment changed after signing", `→ 401 {"code":"FAIL","message":"signature verification failed"} | rejected: no callback ran`,
		"5. payment, 5.00 yuan, attempt 1 at +0s", `→ 500 {"code":"FAIL","message":"callback failed"} | failed: could not award 5 points: points service unavailable`,
		"5. payment, 5.00 yuan, attempt 2 at +15s", "→ 204 No Content | processed: awarded 5 points to oUpF8uMu… (balance 5), synced to WeChat Pay",
		`fake WeChat Pay API got POST /v3/businesscircle/points/notify {"transaction_id":`,
		`"earn_points":true,"increased_points":2,`, `"earn_points":true,"increased_points":5,`,
		"demo: all 6 deliveries behaved as expected",
	)
	if strings.Contains(r.stdout, "UNEXPECTED") {
		t.Errorf("demo reported a surprise:\n%s", r.stdout)
	}
	if got := strings.Count(r.stdout, "\n"); got != 13 {
		t.Errorf("demo printed %d lines, want 13:\n%s", got, r.stdout)
	}
}

func TestDemoInProcess(t *testing.T) {
	r := runInProcess(t, "demo")
	if r.code != 0 || !strings.Contains(r.stdout, "all 6 deliveries behaved as expected") {
		t.Fatalf("demo: %v", r)
	}
}

// A served is a running 'bizcircle serve' or 'bizcircle fakeapi'.
type served struct {
	name  string // the command
	cmd   *exec.Cmd
	url   string
	lines chan string
	seen  []string
}

// startServe runs 'bizcircle serve' on a free loopback port and waits until
// it listens. It is stopped when the test ends.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	return startServer(t, "serve", args...)
}

// startServer runs the command name (serve or fakeapi) on a free loopback
// port and waits until it prints the URL it listens on. It is stopped when
// the test ends.
func startServer(t *testing.T, name string, args ...string) *served {
	t.Helper()
	return startCommand(t, name, append([]string{name, "--addr", "127.0.0.1:0"}, args...), "listening on ")
}

// startCommand runs the binary with args and waits until it prints ready
// followed by its URL. It is stopped when the test ends, and its stderr is
// logged if the test failed.
func startCommand(t *testing.T, name string, args []string, ready string) *served {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{name: name, cmd: cmd, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s's stderr:\n%s", name, stderr.String())
		}
	})
	line := s.waitFor(t, ready)
	s.url = strings.TrimSuffix(strings.Fields(line[strings.Index(line, ready)+len(ready):])[0], ";")
	return s
}

// waitFor returns the next line of the server's output containing substr.
func (s *served) waitFor(t *testing.T, substr string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("%s exited before printing %q; it printed:\n%s", s.name, substr, strings.Join(s.seen, "\n"))
			}
			s.seen = append(s.seen, line)
			if strings.Contains(line, substr) {
				return line
			}
		case <-timeout:
			t.Fatalf("%s did not print %q; it printed:\n%s", s.name, substr, strings.Join(s.seen, "\n"))
		}
	}
}

// stop interrupts the server as Ctrl-C does and returns its exit code.
func (s *served) stop(t *testing.T) int {
	t.Helper()
	return s.signal(t, os.Interrupt)
}

// signal sends sig to the server, waits until it says it stopped and
// exits, and returns its exit code.
func (s *served) signal(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "bizcircle "+s.name+": stopped")
	for range s.lines {
	}
	err := s.cmd.Wait()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}
