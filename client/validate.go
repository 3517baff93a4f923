package client

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A ValidationError reports a request that [Client] refused to send. Field
// is the field's name on the wire (such as "transaction_id"); Reason says
// what is wrong with it. The value itself is never quoted: it may be personal
// data.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return "client: invalid " + e.Field + ": " + e.Reason
}

// Reasons of [ValidationError].
const (
	reasonRequired = "is required"
	reasonNegative = "must not be negative"
	reasonPositive = "must be positive"
)

func reasonTooLong(max int) string {
	return "is longer than " + strconv.Itoa(max) + " characters"
}

// A check is a chain of field checks that keeps the first failure.
type check struct{ err *ValidationError }

func (c *check) fail(field, reason string) {
	if c.err == nil {
		c.err = &ValidationError{Field: field, Reason: reason}
	}
}

// required checks that s is not blank and at most max characters.
func (c *check) required(field, s string, max int) {
	if strings.TrimSpace(s) == "" {
		c.fail(field, reasonRequired)
		return
	}
	c.optional(field, s, max)
}

// optional checks that s is at most max characters. Limits count
// characters, not bytes: WeChat Pay's pages do not say, and counting bytes
// could refuse a valid Chinese remark.
func (c *check) optional(field, s string, max int) {
	if utf8.RuneCountInString(s) > max {
		c.fail(field, reasonTooLong(max))
	}
}

func (c *check) time(field string, t time.Time) {
	if t.IsZero() {
		c.fail(field, reasonRequired)
	}
}

func (c *check) positive(field string, n int64) {
	if n <= 0 {
		c.fail(field, reasonPositive)
	}
}

func (c *check) nonNegative(field string, n int64) {
	if n < 0 {
		c.fail(field, reasonNegative)
	}
}

func (c *check) oneOf(field, s string, values ...string) {
	if s == "" {
		c.fail(field, reasonRequired)
		return
	}
	for _, v := range values {
		if s == v {
			return
		}
	}
	c.fail(field, "must be "+strings.Join(values, " or "))
}

// result returns the first failure as an error, or nil.
func (c *check) result() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// chinaTime is China Standard Time, the zone WeChat Pay writes times in.
var chinaTime = time.FixedZone("CST", 8*3600)

// wireTimeLayout is RFC 3339 with milliseconds, as WeChat Pay's examples
// write it: 2020-05-20T13:29:35.120+08:00.
const wireTimeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string {
	return t.In(chinaTime).Format(wireTimeLayout)
}

// parseTime reads a time in an answer leniently: RFC 3339 with or without
// fractional seconds, or "2006-01-02 15:04:05" in China Standard Time. An
// empty or unreadable value is the zero time.
func parseTime(s string) time.Time {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	if t, err := time.ParseInLocation(time.DateTime, s, chinaTime); err == nil {
		return t
	}
	return time.Time{}
}
