// Command bizcircle is the developer tool of the bizcircle kit. It runs the
// whole notification flow locally (demo); makes a test platform key pair
// (keygen); sends signed notifications of any event type to an endpoint the
// way WeChat Pay does, retries included (send), also as load (send --events
// N, with latency percentiles) and as forgeries the endpoint must refuse
// (--tamper, --stale, --probe, --wrong-key); runs a reference receiver
// (serve); and runs a fake WeChat Pay API for the smart business circle
// calls, which checks the merchant's signatures, so an application under
// local test points its wechatpay-go client at it (fakeapi). For queue mode
// it migrates River's tables, receives notifications into the queue (and,
// on a test database only, processes them with print-only callbacks), lists
// failed jobs, replays or cancels jobs and lists unsynced payments (queue),
// and demo --queue runs the whole loop against PostgreSQL.
//
// Usage:
//
//	bizcircle <command> [flags]
//
// Run "bizcircle <command> --help" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran, and something did not behave as expected
	exitUsage   = 2 // bad command line
)

// A command is one subcommand. run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"demo", "run the whole flow locally: payment, duplicate, refund, tampered, failing-then-retried", runDemo},
	{"fakeapi", "run a fake WeChat Pay API for the smart business circle calls, with signature checks", runFakeAPI},
	{"keygen", "write a test platform key pair and APIv3 key for serve, send and fakeapi", runKeygen},
	{"send", "sign, encrypt and POST notifications of any event type to a URL, as WeChat Pay does", runSend},
	{"serve", "run a reference receiver that prints each event", runServe},
	{"queue", "queue mode on PostgreSQL: migrate, work, failed, replay, cancel, reconcile", runQueue},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args (without the program name) and returns
// the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	case "help":
		if len(rest) == 0 {
			printUsage(stdout)
			return exitOK
		}
		name, rest = rest[0], []string{"--help"}
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, rest, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "bizcircle: unknown command %q\nRun 'bizcircle --help' for the commands.\n", name)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "bizcircle: test WeChat Pay 智慧商圈 notifications and API calls locally\n\nUsage:\n  bizcircle <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'bizcircle <command> --help' for a command's flags.\n")
}

// newFlagSet returns a flag set that prints nothing itself: parseFlags
// reports its errors and usage.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("bizcircle "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. It returns ok when the command should run;
// otherwise code is the exit code: 0 after --help (usage on stdout), 2 after
// a bad flag or an unexpected argument (the error on stderr). synopsis heads
// the usage: the command line and what the command does.
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) (ok bool, code int) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, synopsis)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(stdout, "\nFlags:\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
		return false, exitOK
	case err != nil:
		return false, usageError(stderr, fs, "%v", err)
	case fs.NArg() > 0:
		return false, usageError(stderr, fs, "unexpected argument %q", fs.Arg(0))
	}
	return true, exitOK
}

// usageError reports a bad command line and returns exitUsage.
func usageError(stderr io.Writer, fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", fs.Name(), fmt.Sprintf(format, args...), fs.Name())
	return exitUsage
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
