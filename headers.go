package bizcircle

import (
	"strconv"
	"strings"
	"time"
)

// maxClean is the longest header value put into errors and logs as is.
const maxClean = 64

// clean returns v for errors and logs: as is when short and printable
// ASCII, else its first bytes quoted, with its length. Unsigned headers are
// the sender's choice, and must not fill a log record.
func clean(v string) string {
	if len(v) <= maxClean && printable(v) {
		return v
	}
	short := v
	if len(short) > maxClean/4 {
		short = short[:maxClean/4]
	}
	return strconv.QuoteToASCII(short) + "…(" + strconv.Itoa(len(v)) + " bytes)"
}

func printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// boundedError keeps a verifier's error in the chain but bounds its text:
// wechatpay-go's errors repeat the serial the sender chose.
type boundedError struct {
	err  error
	text string
}

func boundError(err error, serial string) error {
	text := err.Error()
	if serial != "" {
		text = strings.ReplaceAll(text, serial, clean(serial))
	}
	if len(text) > 3*maxClean/2 {
		text = text[:3*maxClean/2] + "…"
	}
	return &boundedError{err: err, text: text}
}

func (e *boundedError) Error() string { return e.text }
func (e *boundedError) Unwrap() error { return e.err }

// within reports whether the Unix time sec is within tol of now, exactly:
// sec*1e9 in [now-tol, now+tol] nanoseconds, with no overflow for any sec.
func within(sec int64, now time.Time, tol time.Duration) bool {
	n := now.UnixNano()
	lo, hi := n-int64(tol), n+int64(tol)
	if lo > n { // overflowed
		lo = -1 << 63
	}
	if hi < n {
		hi = 1<<63 - 1
	}
	return sec >= ceilDiv(lo, 1e9) && sec <= floorDiv(hi, 1e9)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}
