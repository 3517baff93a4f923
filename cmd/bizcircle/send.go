package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	neturl "net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
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

// staleBy is how old --stale makes the timestamp: twice WeChat Pay's
// 5-minute window.
const staleBy = 2 * bizcircle.DefaultTolerance

// eventNames maps --event's short names to event types.
var eventNames = map[string]string{
	"payment":       bizcircle.EventPayment,
	"refund":        bizcircle.EventRefund,
	"authorization": bizcircle.EventAuthorization,
}

// eventTypePattern is the shape of WeChat Pay's event types, such as
// TRANSACTION.SUCCESS or MCHTRANSFER.BILL.FINISHED.
var eventTypePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$`)

// parseEvent returns the event type --event names, and whether it is one of
// the smart business circle events, whose fields send knows.
func parseEvent(name string) (eventType string, builtin, ok bool) {
	if t, ok := eventNames[name]; ok {
		return t, true, true
	}
	if slices.Contains(allEvents, name) {
		return name, true, true
	}
	return name, false, eventTypePattern.MatchString(name)
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

// forgery describes the notification the endpoint must refuse, or is "".
func (o *sendOptions) forgery() string {
	switch {
	case o.tamper:
		return "body changed after signing"
	case o.stale:
		return fmt.Sprintf("timestamp %v old", staleBy)
	case o.probe:
		return "signature replaced by a " + bizcircle.SignTestPrefix + " probe"
	case o.wrongKey:
		return "signed with a key the endpoint does not know, under the same public key ID"
	}
	return ""
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

// send delivers o.count() notifications of plaintext, o.concurrency at a
// time, and reports.
func send(ctx context.Context, platform *bizcircletest.Platform, plaintext []byte, o *sendOptions, stdout io.Writer) int {
	// build returns the notification to deliver i-th: one message for all
	// the copies, a fresh event each time with --events.
	var build func(i int) *bizcircletest.Message
	fields := idFields(o.eventType)
	_, freshened := freshIDs(plaintext, fields)
	if o.events > 0 {
		build = func(int) *bizcircletest.Message {
			fresh, _ := freshIDs(plaintext, fields)
			return platform.Event(o.eventType, fresh)
		}
	} else {
		m := platform.Event(o.eventType, plaintext)
		build = func(int) *bizcircletest.Message { return m }
	}
	forge := func(m *bizcircletest.Message) *bizcircletest.Message {
		switch {
		case o.tamper:
			return tamper(m)
		case o.probe:
			return probe(m)
		}
		return m
	}

	n := o.count()
	if o.events > 0 {
		fmt.Fprintf(stdout, "sending %d %s events, %d at a time, to %s", n, o.eventType, min(o.concurrency, n), o.url)
		if len(freshened) > 0 {
			fmt.Fprintf(stdout, ", each with a fresh notification ID and %s", strings.Join(freshened, ", "))
		} else {
			fmt.Fprintf(stdout, ", each with a fresh notification ID (the plaintext has none of %s)", strings.Join(fields, ", "))
		}
	} else {
		m := build(0)
		fmt.Fprintf(stdout, "sending %s id=%s (%s) to %s", m.EventType, m.ID, summarize(m.Plaintext), o.url)
		if n > 1 {
			fmt.Fprintf(stdout, ", %d copies, %d at a time", n, min(o.concurrency, n))
		}
	}
	if f := o.forgery(); f != "" {
		fmt.Fprint(stdout, ", "+f)
	}
	fmt.Fprintln(stdout)

	base := bizcircletest.Deliverer{
		Platform: platform, // re-signs each attempt, with --stale's clock or --wrong-key's key
		Schedule: []time.Duration{},
		Client:   &http.Client{},
		Timeout:  o.timeout,
	}
	if o.tamper || o.probe {
		base.Platform = nil // re-signing would make the forgery valid
	}
	if o.retry {
		base.Schedule = nil
		base.Sleep = func(ctx context.Context, d time.Duration) error {
			// Inline, not internal/ctxsleep: cmd/bizcircle is to become a
			// module of its own, which may not import the kit's internal
			// packages.
			select {
			case <-time.After(time.Duration(float64(d) / o.speed)):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	const maxShown = 10 // unexpected answers printed with --events
	var (
		mu      sync.Mutex
		stats   sendStats
		results = make([]bizcircletest.Attempt, n) // each one's last attempt
		hidden  int
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(o.concurrency, n) {
		wg.Go(func() {
			for i := range jobs {
				d := base
				d.OnAttempt = func(a bizcircletest.Attempt) {
					mu.Lock()
					defer mu.Unlock()
					stats.add(a)
					switch {
					case o.events == 0, !o.expected(a) && stats.shown < maxShown:
						stats.shown++
						fmt.Fprintln(stdout, attemptLine(i, a, o))
					case !o.expected(a):
						hidden++
					}
				}
				attempts, _ := d.DeliverURL(ctx, o.url, forge(build(i)))
				if len(attempts) > 0 {
					results[i] = attempts[len(attempts)-1]
				}
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)

	acked, refusedN, failed := 0, 0, 0
	for _, a := range results {
		switch {
		case a.OK():
			acked++
		case refused(a):
			refusedN++
		default:
			failed++ // 5xx, another 2xx, transport error, or not sent
		}
	}
	if hidden > 0 {
		fmt.Fprintf(stdout, "… and %d more unexpected answers\n", hidden)
	}
	fmt.Fprintf(stdout, "%d sent: %d acknowledged (200/204), %d refused (4xx), %d failed (other status, no answer or not sent)\n", n, acked, refusedN, failed)
	if n > 1 || o.events > 0 {
		fmt.Fprintln(stdout, stats.statusLine())
		if line := stats.latencyLine(elapsed); line != "" {
			fmt.Fprintln(stdout, line)
		}
	}
	if o.forgery() != "" {
		if refusedN == n {
			fmt.Fprintln(stdout, "ok: the endpoint refused the notification, as it must")
			return exitOK
		}
		fmt.Fprintln(stdout, "FAIL: the endpoint must refuse this notification with a 4xx (bizcircle answers 401)")
		return exitFailure
	}
	if acked == n {
		return exitOK
	}
	return exitFailure
}

// sendStats counts every attempt's answer and keeps its latency.
type sendStats struct {
	statuses  map[int]int // status → attempts; 0 for no answer
	latencies []time.Duration
	shown     int // attempt lines printed
}

func (s *sendStats) add(a bizcircletest.Attempt) {
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	if a.Err != nil {
		s.statuses[0]++
		return
	}
	s.statuses[a.Status]++
	s.latencies = append(s.latencies, a.Latency)
}

// statusLine counts the answers per status, such as "answers: 204 ×19,
// 500 ×1".
func (s *sendStats) statusLine() string {
	var parts []string
	for _, status := range slices.Sorted(maps.Keys(s.statuses)) {
		if status != 0 {
			parts = append(parts, fmt.Sprintf("%d ×%d", status, s.statuses[status]))
		}
	}
	if n := s.statuses[0]; n > 0 {
		parts = append(parts, fmt.Sprintf("no answer ×%d", n))
	}
	return "answers: " + strings.Join(parts, ", ")
}

// latencyLine gives the latency percentiles of the answers, and the rate
// over elapsed; "" when nothing was answered.
func (s *sendStats) latencyLine(elapsed time.Duration) string {
	if len(s.latencies) == 0 {
		return ""
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	attempts := len(l) + s.statuses[0]
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("latency: p50 %v, p90 %v, p99 %v, max %v over %d answers; %d requests in %v (%.0f/s)",
		r(percentile(l, 50)), r(percentile(l, 90)), r(percentile(l, 99)), r(l[len(l)-1]), len(l),
		attempts, elapsed.Round(time.Millisecond), float64(attempts)/elapsed.Seconds())
}

// percentile returns the nearest-rank p-th percentile of sorted, which is
// not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// attemptLine reports one attempt: copy or event and attempt numbers,
// scheduled offset, status, latency and the body.
func attemptLine(i int, a bizcircletest.Attempt, o *sendOptions) string {
	var b strings.Builder
	switch {
	case o.events > 0:
		fmt.Fprintf(&b, "event %d ", i+1)
	case o.repeat > 1:
		fmt.Fprintf(&b, "copy %d ", i+1)
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

// readData returns the content of file, or of stdin for "-".
func readData(file string, stdin io.Reader) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(file)
}

// decodeEventData unmarshals data strictly over the chosen event's defaults.
func decodeEventData(data []byte, eventType string, ev *sendEvents) error {
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
	return dec.Decode(target)
}

// plaintext returns the chosen event's JSON, as WeChat Pay encrypts it.
func (ev *sendEvents) plaintext(eventType string) []byte {
	var v any
	switch eventType {
	case bizcircle.EventPayment:
		v = ev.payment
	case bizcircle.EventRefund:
		v = ev.refund
	default:
		v = ev.authorization
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("bizcircle send: " + err.Error()) // the event types always marshal
	}
	return b
}

// idFields are the plaintext fields --events makes fresh in each event: the
// business IDs receivers dedupe on.
func idFields(eventType string) []string {
	if eventType == bizcircle.EventAuthorization {
		return []string{"code"} // the kit dedupes it on the notification ID
	}
	return []string{"transaction_id", "out_trade_no", "refund_id", "out_refund_no", "coupon_id", "order_id", "out_order_no", "complaint_id", "transfer_bill_no", "out_bill_no"}
}

// freshIDs returns plaintext with a fresh value in each of fields that is a
// top-level string of the JSON object, and the names of the fields it
// changed. Plaintext that is not a JSON object is returned as it is.
func freshIDs(plaintext []byte, fields []string) ([]byte, []string) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(plaintext, &obj) != nil || obj == nil {
		return plaintext, nil
	}
	var changed []string
	for _, f := range fields {
		var v string
		if raw, ok := obj[f]; !ok || json.Unmarshal(raw, &v) != nil || v == "" {
			continue
		}
		b, _ := json.Marshal(freshID(v))
		obj[f] = b
		changed = append(changed, f)
	}
	if len(changed) == 0 {
		return plaintext, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return plaintext, nil
	}
	return out, changed
}

// freshID returns a random ID shaped like id: as many digits with the same
// first two for WeChat Pay's long numeric IDs, else id and random digits.
func freshID(id string) string {
	if len(id) >= 16 && strings.Trim(id, "0123456789") == "" {
		return id[:2] + randomDigits(len(id)-2)
	}
	return id + "-" + randomDigits(10)
}

func randomDigits(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("bizcircle send: " + err.Error())
	}
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
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

// probe returns a copy of m carrying WeChat Pay's check that merchants
// verify: WECHATPAY/SIGNTEST/ and random base64 in place of the signature.
func probe(m *bizcircletest.Message) *bizcircletest.Message {
	c := m.Clone()
	sig := make([]byte, 256) // as long as a real RSA-2048 signature
	if _, err := rand.Read(sig); err != nil {
		panic("bizcircle send: " + err.Error())
	}
	c.Header.Set(bizcircle.HeaderSignature, bizcircle.SignTestPrefix+base64.StdEncoding.EncodeToString(sig))
	return c
}

// summarize describes a plaintext by its identifying fields, or its size.
func summarize(plaintext []byte) string {
	var f map[string]json.RawMessage
	if json.Unmarshal(plaintext, &f) != nil {
		return fmt.Sprintf("%d bytes", len(plaintext))
	}
	var parts []string
	for _, name := range []string{"openid", "transaction_id", "out_trade_no", "refund_id", "amount", "refund_amount", "code", "trade_state", "refund_status"} {
		raw, ok := f[name]
		if !ok {
			continue
		}
		var s string
		switch {
		case json.Unmarshal(raw, &s) == nil:
		case len(raw) > 0 && raw[0] != '{' && raw[0] != '[':
			s = string(raw)
		default:
			continue
		}
		if s != "" {
			parts = append(parts, name+"="+s)
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d bytes", len(plaintext))
	}
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
