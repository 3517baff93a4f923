package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/go-bizcircle/bizcircle"
)

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
