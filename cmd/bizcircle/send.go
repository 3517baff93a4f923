package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"math"
	neturl "net/url"
	"os"
	"slices"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

const sendUsage = `Usage: bizcircle send [flags]

Signs and encrypts a notification with the keys from 'bizcircle keygen' and
POSTs it to --url, as WeChat Pay does, printing each answer's status, body
and latency.

--event picks the notification. payment, refund and authorization are the
smart business circle events: their fields default to a realistic sample
with fresh IDs; set them with --data (a JSON file of the event's fields, as
WeChat Pay sends them, "-" for stdin) and the field flags (which override
--data). Any other WeChat Pay event type, such as TRANSACTION.SUCCESS or
REFUND.SUCCESS, needs --data: the file's JSON is the plaintext, sent as it is.

  --repeat N --concurrency C   send N copies of one notification, C at a time
                               (WeChat Pay's duplicates: the callback must run once)
  --events N --concurrency C   send N distinct events, C at a time: each has a fresh
                               notification ID and fresh business IDs (transaction_id,
                               refund_id, out_trade_no, coupon_id, …, or an
                               authorization's code); prints only unexpected answers,
                               then the count per status and latency percentiles
  --retry                      resend each one on WeChat Pay's schedule until 200 or 204:
                               15s 15s 30s 3m 10m 20m 30m 30m 30m 60m 3h 3h 3h 6h 6h
  --speed F                    with --retry, wait 1/F of each delay (3600: a day in 24s)
  --tamper                     change the body after signing; your endpoint must refuse it
  --stale                      sign with a timestamp 10 minutes old; your endpoint must refuse it
  --probe                      replace the signature with WeChat Pay's check that merchants
                               verify, WECHATPAY/SIGNTEST/ and random base64; your
                               endpoint must refuse it
  --wrong-key                  sign with a fresh key under the same public key ID; your
                               endpoint must refuse it

Exits 0 when every notification was acknowledged with 200 or 204 (WeChat Pay
takes no other status, other 2xx included, as received); with --tamper,
--stale, --probe or --wrong-key, when every one was refused with a 4xx.
Otherwise exits 1.

Examples:
  bizcircle send --amount 8800 --openid oUpF8uMuAJ2pxb1Q9zNjWUHsd
  bizcircle send --event refund --transaction-id 4200001234 --refund-amount 100
  bizcircle send --event TRANSACTION.SUCCESS --data transaction.json
  bizcircle send --repeat 50 --concurrency 50
  bizcircle send --events 1000 --concurrency 20
  bizcircle send --retry --speed 3600
  bizcircle send --probe
`

// sendOptions are send's parsed flags.
type sendOptions struct {
	url         string
	eventType   string
	repeat      int // copies of one notification
	events      int // distinct events; 0 without --events
	concurrency int
	retry       bool
	speed       float64
	tamper      bool
	stale       bool
	probe       bool
	wrongKey    bool
	timeout     time.Duration
}

// count is how many notifications send delivers.
func (o *sendOptions) count() int {
	if o.events > 0 {
		return o.events
	}
	return o.repeat
}

// expected reports whether a was the answer the mode wants: 200 or 204, or
// a 4xx for a forgery.
func (o *sendOptions) expected(a bizcircletest.Attempt) bool {
	if o.forgery() != "" {
		return refused(a)
	}
	return a.OK()
}

// refused reports whether a was refused with a 4xx.
func refused(a bizcircletest.Attempt) bool {
	return a.Err == nil && a.Status >= 400 && a.Status < 500
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("send")
	var o sendOptions
	dir := fs.String("dir", defaultKeyDir, "`directory` of the keys written by 'bizcircle keygen'")
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080/wechat/bizcircle", "`URL` to POST the notification to")
	event := fs.String("event", "payment", "notification to send: payment, refund, authorization, or any WeChat Pay event `type` (TRANSACTION.SUCCESS, …; needs --data)")
	data := fs.String("data", "", "JSON `file` of the event's fields, or of any event type's whole plaintext (\"-\": stdin)")
	fs.IntVar(&o.repeat, "repeat", 1, "send `N` copies of the notification")
	fs.IntVar(&o.events, "events", 0, "send `N` distinct events, with fresh notification and business IDs, and summarize")
	fs.IntVar(&o.concurrency, "concurrency", 1, "send up to `C` copies or events at the same time")
	fs.BoolVar(&o.retry, "retry", false, "resend on WeChat Pay's schedule until 200 or 204 (16 attempts over 24h4m)")
	fs.Float64Var(&o.speed, "speed", 1, "with --retry, compress time by `F` (3600: the 24h4m schedule in about 24s)")
	fs.BoolVar(&o.tamper, "tamper", false, "change the body after signing: the endpoint must answer 4xx")
	fs.BoolVar(&o.stale, "stale", false, "sign with a timestamp 10 minutes old: the endpoint must answer 4xx")
	fs.BoolVar(&o.probe, "probe", false, "send a "+bizcircle.SignTestPrefix+" signature probe: the endpoint must answer 4xx")
	fs.BoolVar(&o.wrongKey, "wrong-key", false, "sign with a key the endpoint does not know: the endpoint must answer 4xx")
	fs.DurationVar(&o.timeout, "timeout", bizcircletest.DefaultAttemptTimeout, "how long to wait for each answer (WeChat Pay waits 5s)")
	strs, ints := map[string]*string{}, map[string]*int64{}
	for _, f := range fieldFlags {
		if f.int {
			ints[f.name] = fs.Int64(f.name, 0, f.usage+" ("+eventList(f.events)+")")
		} else {
			strs[f.name] = fs.String(f.name, "", f.usage+" ("+eventList(f.events)+")")
		}
	}
	if ok, code := parseFlags(fs, sendUsage, args, stdout, stderr); !ok {
		return code
	}

	// Check the command line before touching keys or the network.
	eventType, builtin, ok := parseEvent(*event)
	if !ok {
		return usageError(stderr, fs, "--event %q: want payment, refund, authorization or a WeChat Pay event type such as TRANSACTION.SUCCESS", *event)
	}
	o.eventType = eventType
	if !builtin && *data == "" {
		return usageError(stderr, fs, "--event %s needs --data: a JSON file of its plaintext", eventType)
	}
	if u, err := neturl.Parse(o.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError(stderr, fs, "--url %q: want an http:// or https:// URL", o.url)
	}
	forgeries := 0
	for _, f := range []bool{o.tamper, o.stale, o.probe, o.wrongKey} {
		if f {
			forgeries++
		}
	}
	switch {
	case o.repeat < 1:
		return usageError(stderr, fs, "--repeat must be at least 1")
	case isSet(fs, "events") && o.events < 1:
		return usageError(stderr, fs, "--events must be at least 1")
	case isSet(fs, "events") && isSet(fs, "repeat"):
		return usageError(stderr, fs, "use one of --repeat (copies of one notification) and --events (distinct events)")
	case o.concurrency < 1:
		return usageError(stderr, fs, "--concurrency must be at least 1")
	case o.speed <= 0 || math.IsInf(o.speed, 0) || math.IsNaN(o.speed):
		return usageError(stderr, fs, "--speed must be a positive number")
	case isSet(fs, "speed") && !o.retry:
		return usageError(stderr, fs, "--speed only applies with --retry")
	case forgeries > 1:
		return usageError(stderr, fs, "use only one of --tamper, --stale, --probe and --wrong-key")
	case forgeries > 0 && o.retry:
		return usageError(stderr, fs, "--retry resends until 200 or 204, which --tamper, --stale, --probe and --wrong-key must never get")
	case o.timeout <= 0:
		return usageError(stderr, fs, "--timeout must be positive")
	}
	for _, f := range fieldFlags {
		if isSet(fs, f.name) && !slices.Contains(f.events, o.eventType) {
			return usageError(stderr, fs, "--%s applies to %s notifications, not %s", f.name, eventList(f.events), *event)
		}
	}

	platform, err := loadPlatform(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "bizcircle send: %v\n", err)
		return exitFailure
	}
	var plaintext []byte
	if *data != "" {
		if plaintext, err = readData(*data, os.Stdin); err != nil {
			fmt.Fprintf(stderr, "bizcircle send: --data: %v\n", err)
			return exitFailure
		}
	}
	if builtin {
		ev := sendEvents{payment: bizcircletest.SamplePayment(), authorization: bizcircletest.SampleAuthorization()}
		ev.refund = bizcircletest.SampleRefund(ev.payment)
		if plaintext != nil {
			if err := decodeEventData(plaintext, o.eventType, &ev); err != nil {
				fmt.Fprintf(stderr, "bizcircle send: --data: %s: %v\n", *data, err)
				return exitFailure
			}
		}
		for _, f := range fieldFlags {
			if isSet(fs, f.name) {
				f.set(&ev, deref(strs[f.name]), deref(ints[f.name]))
			}
		}
		plaintext = ev.plaintext(o.eventType)
	} else if !json.Valid(plaintext) {
		fmt.Fprintf(stderr, "bizcircle send: --data: %s is not JSON\n", *data)
		return exitFailure
	}
	if o.stale {
		platform.Now = func() time.Time { return time.Now().Add(-staleBy) }
	}
	if o.wrongKey {
		// Same public key ID, APIv3 key and clock: only the signature is wrong.
		if platform.Key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			fmt.Fprintf(stderr, "bizcircle send: %v\n", err)
			return exitFailure
		}
	}
	return send(ctx, platform, plaintext, &o, stdout)
}
