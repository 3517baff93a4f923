package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/internal/ctxsleep"
)

const sendUsage = `Usage: bizcircle send [flags]

Signs and encrypts a notification with the keys from 'bizcircle keygen' and
POSTs it to --url, as WeChat Pay does, printing each answer's status, body
and latency. Fields default to a realistic sample with fresh IDs; set them
with --data (a JSON file of the event's fields, as WeChat Pay sends them,
"-" for stdin) and the field flags (which override --data).

  --repeat N --concurrency C   send N copies of one notification, C at a time
                               (WeChat Pay's duplicates: the callback must run once)
  --retry                      resend each copy on WeChat Pay's schedule until 200 or 204:
                               15s 15s 30s 3m 10m 20m 30m 30m 30m 60m 3h 3h 3h 6h 6h
  --speed F                    with --retry, wait 1/F of each delay (3600: a day in 24s)
  --tamper                     change the body after signing; your endpoint must refuse it
  --stale                      sign with a timestamp 10 minutes old; your endpoint must refuse it

Exits 0 when every copy was acknowledged with 200 or 204 (WeChat Pay takes no
other status, other 2xx included, as received); with --tamper or --stale,
when every copy was refused with a 4xx. Otherwise exits 1.

Examples:
  bizcircle send --amount 8800 --openid oUpF8uMuAJ2pxb1Q9zNjWUHsd
  bizcircle send --event refund --transaction-id 4200001234 --refund-amount 100
  bizcircle send --repeat 50 --concurrency 50
  bizcircle send --retry --speed 3600
  bizcircle send --tamper
`

// staleBy is how old --stale makes the timestamp: twice WeChat Pay's
// 5-minute window.
const staleBy = 2 * bizcircle.DefaultTolerance

// eventNames maps --event values to event types.
var eventNames = map[string]string{
	"payment":       bizcircle.EventPayment,
	"refund":        bizcircle.EventRefund,
	"authorization": bizcircle.EventAuthorization,
}

// A fieldFlag is a flag that sets one plaintext field, for the events that
// have it.
type fieldFlag struct {
	name, usage string
	events      []string // event types the field belongs to
	int         bool
	set         func(*sendEvents, string, int64)
}

// sendEvents holds one event of each type; the chosen one is sent.
type sendEvents struct {
	payment       bizcircle.PaymentEvent
	refund        bizcircle.RefundEvent
	authorization bizcircle.AuthorizationEvent
}

var (
	payRefund = []string{bizcircle.EventPayment, bizcircle.EventRefund}
	allEvents = []string{bizcircle.EventPayment, bizcircle.EventRefund, bizcircle.EventAuthorization}
)

var fieldFlags = []fieldFlag{
	{"mchid", "the shop's merchant ID", allEvents, false, func(e *sendEvents, s string, _ int64) {
		e.payment.MchID, e.refund.MchID, e.authorization.MchID = s, s, s
	}},
	{"merchant-name", "the mall's name", payRefund, false, func(e *sendEvents, s string, _ int64) {
		e.payment.MerchantName, e.refund.MerchantName = s, s
	}},
	{"shop-name", "the shop's name", payRefund, false, func(e *sendEvents, s string, _ int64) {
		e.payment.ShopName, e.refund.ShopName = s, s
	}},
	{"shop-number", "the shop's number", payRefund, false, func(e *sendEvents, s string, _ int64) {
		e.payment.ShopNumber, e.refund.ShopNumber = s, s
	}},
	{"appid", "the mall's AppID", payRefund, false, func(e *sendEvents, s string, _ int64) {
		e.payment.AppID, e.refund.AppID = s, s
	}},
	{"openid", "the shopper's OpenID", allEvents, false, func(e *sendEvents, s string, _ int64) {
		e.payment.OpenID, e.refund.OpenID, e.authorization.OpenID = s, s, s
	}},
	{"transaction-id", "WeChat Pay's order number (default: fresh)", payRefund, false, func(e *sendEvents, s string, _ int64) {
		e.payment.TransactionID, e.refund.TransactionID = s, s
	}},
	{"amount", "paid amount in fen; for a refund, pay_amount and refund_amount", payRefund, true, func(e *sendEvents, _ string, n int64) {
		e.payment.Amount, e.refund.PayAmount, e.refund.RefundAmount = n, n, n
	}},
	{"commit-tag", "commit_tag of a purchase submitted by hand", []string{bizcircle.EventPayment}, false, func(e *sendEvents, s string, _ int64) {
		e.payment.CommitTag = s
	}},
	{"refund-id", "WeChat Pay's refund number (default: fresh)", []string{bizcircle.EventRefund}, false, func(e *sendEvents, s string, _ int64) {
		e.refund.RefundID = s
	}},
	{"refund-amount", "refunded amount in fen (default: the whole amount)", []string{bizcircle.EventRefund}, true, func(e *sendEvents, _ string, n int64) {
		e.refund.RefundAmount = n
	}},
	{"code", "membership card code", []string{bizcircle.EventAuthorization}, false, func(e *sendEvents, s string, _ int64) {
		e.authorization.Code = s
	}},
	{"auth-type", "REGISTERED_MODE or REGISTERED_AND_AUTHORIZATION_MODE", []string{bizcircle.EventAuthorization}, false, func(e *sendEvents, s string, _ int64) {
		e.authorization.AuthType = s
	}},
}

// sendOptions are send's parsed flags.
type sendOptions struct {
	url         string
	eventType   string
	repeat      int
	concurrency int
	retry       bool
	speed       float64
	tamper      bool
	stale       bool
	timeout     time.Duration
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("send")
	var o sendOptions
	dir := fs.String("dir", defaultKeyDir, "`directory` of the keys written by 'bizcircle keygen'")
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080/wechat/bizcircle", "`URL` to POST the notification to")
	event := fs.String("event", "payment", "notification to send: payment, refund or authorization")
	data := fs.String("data", "", "JSON `file` of the event's fields (\"-\": stdin)")
	fs.IntVar(&o.repeat, "repeat", 1, "send `N` copies of the notification")
	fs.IntVar(&o.concurrency, "concurrency", 1, "send up to `C` copies at the same time")
	fs.BoolVar(&o.retry, "retry", false, "resend on WeChat Pay's schedule until 200 or 204 (16 attempts over 24h4m)")
	fs.Float64Var(&o.speed, "speed", 1, "with --retry, compress time by `F` (3600: the 24h4m schedule in about 24s)")
	fs.BoolVar(&o.tamper, "tamper", false, "change the body after signing: the endpoint must answer 4xx")
	fs.BoolVar(&o.stale, "stale", false, "sign with a timestamp 10 minutes old: the endpoint must answer 4xx")
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
	var ok bool
	if o.eventType, ok = eventNames[*event]; !ok {
		return usageError(stderr, fs, "--event %q: want payment, refund or authorization", *event)
	}
	if u, err := neturl.Parse(o.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError(stderr, fs, "--url %q: want an http:// or https:// URL", o.url)
	}
	switch {
	case o.repeat < 1:
		return usageError(stderr, fs, "--repeat must be at least 1")
	case o.concurrency < 1:
		return usageError(stderr, fs, "--concurrency must be at least 1")
	case o.speed <= 0 || math.IsInf(o.speed, 0) || math.IsNaN(o.speed):
		return usageError(stderr, fs, "--speed must be a positive number")
	case isSet(fs, "speed") && !o.retry:
		return usageError(stderr, fs, "--speed only applies with --retry")
	case o.tamper && o.stale:
		return usageError(stderr, fs, "use one of --tamper and --stale")
	case (o.tamper || o.stale) && o.retry:
		return usageError(stderr, fs, "--retry resends until 200 or 204, which --tamper and --stale must never get")
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
	ev := sendEvents{payment: bizcircletest.SamplePayment(), authorization: bizcircletest.SampleAuthorization()}
	ev.refund = bizcircletest.SampleRefund(ev.payment)
	if *data != "" {
		if err := readEventData(*data, o.eventType, &ev, os.Stdin); err != nil {
			fmt.Fprintf(stderr, "bizcircle send: --data: %v\n", err)
			return exitFailure
		}
	}
	for _, f := range fieldFlags {
		if isSet(fs, f.name) {
			f.set(&ev, deref(strs[f.name]), deref(ints[f.name]))
		}
	}
	if o.stale {
		platform.Now = func() time.Time { return time.Now().Add(-staleBy) }
	}
	var m *bizcircletest.Message
	switch o.eventType {
	case bizcircle.EventPayment:
		m = platform.Payment(ev.payment)
	case bizcircle.EventRefund:
		m = platform.Refund(ev.refund)
	default:
		m = platform.Authorization(ev.authorization)
	}
	if o.tamper {
		m = tamper(m)
	}
	return send(ctx, platform, m, &o, stdout)
}

// send delivers o.repeat copies of m, o.concurrency at a time, and reports.
func send(ctx context.Context, platform *bizcircletest.Platform, m *bizcircletest.Message, o *sendOptions, stdout io.Writer) int {
	fmt.Fprintf(stdout, "sending %s id=%s (%s) to %s", m.EventType, m.ID, summarize(m), o.url)
	if o.repeat > 1 {
		fmt.Fprintf(stdout, ", %d copies, %d at a time", o.repeat, o.concurrency)
	}
	switch {
	case o.tamper:
		fmt.Fprint(stdout, ", body changed after signing")
	case o.stale:
		fmt.Fprintf(stdout, ", timestamp %v old", staleBy)
	}
	fmt.Fprintln(stdout)

	var out sync.Mutex
	base := bizcircletest.Deliverer{
		Platform: platform,
		Schedule: []time.Duration{},
		Client:   &http.Client{},
		Timeout:  o.timeout,
	}
	if o.tamper {
		base.Platform = nil // re-signing would make the changed body valid
	}
	if o.retry {
		base.Schedule = nil
		base.Sleep = func(ctx context.Context, d time.Duration) error {
			return ctxsleep.Sleep(ctx, time.Duration(float64(d)/o.speed))
		}
	}
	results := make([]bizcircletest.Attempt, o.repeat) // each copy's last attempt
	copies := make(chan int)
	var wg sync.WaitGroup
	for range min(o.concurrency, o.repeat) {
		wg.Go(func() {
			for c := range copies {
				d := base
				d.OnAttempt = func(a bizcircletest.Attempt) {
					out.Lock()
					defer out.Unlock()
					fmt.Fprintln(stdout, attemptLine(c, a, o))
				}
				attempts, _ := d.DeliverURL(ctx, o.url, m)
				if len(attempts) > 0 {
					results[c] = attempts[len(attempts)-1]
				}
			}
		})
	}
	for c := range o.repeat {
		if ctx.Err() != nil {
			break
		}
		copies <- c
	}
	close(copies)
	wg.Wait()

	acked, refused, failed := 0, 0, 0
	for _, a := range results {
		switch {
		case a.OK():
			acked++
		case a.Err == nil && a.Status >= 400 && a.Status < 500:
			refused++
		default:
			failed++ // 5xx, another 2xx, transport error, or not sent
		}
	}
	fmt.Fprintf(stdout, "%d sent: %d acknowledged (200/204), %d refused (4xx), %d failed (other status, no answer or not sent)\n", o.repeat, acked, refused, failed)
	if o.tamper || o.stale {
		if refused == o.repeat {
			fmt.Fprintln(stdout, "ok: the endpoint refused the notification, as it must")
			return exitOK
		}
		fmt.Fprintln(stdout, "FAIL: the endpoint must refuse this notification with a 4xx (bizcircle answers 401)")
		return exitFailure
	}
	if acked == o.repeat {
		return exitOK
	}
	return exitFailure
}

// attemptLine reports one attempt: copy and attempt numbers, scheduled
// offset, status, latency and the body.
func attemptLine(c int, a bizcircletest.Attempt, o *sendOptions) string {
	var b strings.Builder
	if o.repeat > 1 {
		fmt.Fprintf(&b, "copy %d ", c+1)
	}
	if o.retry {
		fmt.Fprintf(&b, "attempt %d (+%v) ", a.N, a.Offset)
	}
	if a.Err != nil {
		fmt.Fprintf(&b, "→ error after %v: %v", a.Latency.Round(time.Microsecond), a.Err)
		return b.String()
	}
	fmt.Fprintf(&b, "→ %d %s in %v", a.Status, http.StatusText(a.Status), a.Latency.Round(time.Microsecond))
	if body := strings.TrimSpace(string(a.Body)); body != "" {
		const max = 200
		if len(body) > max {
			body = body[:max] + "…"
		}
		fmt.Fprintf(&b, ": %s", body)
	}
	return b.String()
}

// readEventData unmarshals the JSON in file (or stdin for "-") over the
// chosen event's defaults.
func readEventData(file, eventType string, ev *sendEvents, stdin io.Reader) error {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	var target any
	switch eventType {
	case bizcircle.EventPayment:
		target = &ev.payment
	case bizcircle.EventRefund:
		target = &ev.refund
	default:
		target = &ev.authorization
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // catch misspelt field names
	if err := dec.Decode(target); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// tamper returns a copy of m whose body was changed after signing, as an
// attacker would: same envelope, different bytes.
func tamper(m *bizcircletest.Message) *bizcircletest.Message {
	c := m.Clone()
	c.Body = bytes.Replace(c.Body, []byte(`"summary":"`), []byte(`"summary":"TAMPERED `), 1)
	if bytes.Equal(c.Body, m.Body) {
		c.Body = append(c.Body, ' ')
	}
	return c
}

// summarize describes m's event by its identifying fields.
func summarize(m *bizcircletest.Message) string {
	var f struct {
		OpenID        string `json:"openid"`
		TransactionID string `json:"transaction_id"`
		RefundID      string `json:"refund_id"`
		Amount        *int64 `json:"amount"`
		RefundAmount  *int64 `json:"refund_amount"`
		Code          string `json:"code"`
	}
	if err := json.Unmarshal(m.Plaintext, &f); err != nil {
		return "unparsed"
	}
	parts := []string{"openid=" + f.OpenID}
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+"="+v)
		}
	}
	add("transaction_id", f.TransactionID)
	add("refund_id", f.RefundID)
	if f.Amount != nil {
		add("amount", fmt.Sprint(*f.Amount))
	}
	if f.RefundAmount != nil {
		add("refund_amount", fmt.Sprint(*f.RefundAmount))
	}
	add("code", f.Code)
	return strings.Join(parts, " ")
}

func eventList(types []string) string {
	names := make([]string, 0, len(types))
	for _, name := range []string{"payment", "refund", "authorization"} {
		if slices.Contains(types, eventNames[name]) {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}
