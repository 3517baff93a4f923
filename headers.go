package bizcircle

import (
	"strconv"
	"strings"
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
