package bizcircle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// VerifyAndDecrypt returns middleware that owns the request body: it reads
// it (bounded by WithMaxBodyBytes), verifies the signature, decrypts the
// resource, and calls next with the [Notification] in the request's context
// (read it with [NotificationFromContext]). A request that fails is answered
// with the status [StatusCode] gives and WeChat Pay's failure body, and next
// is not called. The body is consumed: next reads the Notification instead.
//
// The errors are those of [NewDecoder].
func VerifyAndDecrypt(apiV3Key string, verifier auth.Verifier, opts ...Option) (func(http.Handler) http.Handler, error) {
	d, err := NewDecoder(apiV3Key, verifier, opts...)
	if err != nil {
		return nil, err
	}
	return d.Handler, nil
}

// Handler is the middleware that [VerifyAndDecrypt] returns.
func (d *Decoder) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		if hctx, end := d.hooks.start(ctx, Delivery{Header: r.Header}); end != nil {
			defer end()
			ctx = hctx
		}
		n, err := d.decodeRequest(ctx, w, r)
		d.report(ctx, start, n, r.Header, err)
		if err != nil {
			WriteAnswer(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(ctx, n)))
	})
}

func (d *Decoder) decodeRequest(ctx context.Context, w http.ResponseWriter, r *http.Request) (*Notification, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, ErrMethod
	}
	if d.allowed != nil && !d.allowed(r) {
		return nil, ErrSourceIP
	}
	body, err := d.readBody(w, r)
	if err != nil {
		return nil, err
	}
	return d.decode(ctx, r.Header, body, true)
}

// readBody reads the whole body, at most maxBody bytes whatever
// Content-Length claims, in one allocation when Content-Length is honest.
func (d *Decoder) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > d.maxBody {
		return nil, fmt.Errorf("%w: %w", ErrBodyTooLarge, &http.MaxBytesError{Limit: d.maxBody})
	}
	if r.Body == nil || r.Body == http.NoBody {
		if r.ContentLength > 0 {
			return nil, fmt.Errorf("%w: no body left", ErrBodyConsumed)
		}
		return nil, nil
	}
	rd := http.MaxBytesReader(w, r.Body, d.maxBody)
	// Trust Content-Length for the first allocation only up to a typical
	// notification's size: an unverified client must not pick the size.
	size := 512
	if r.ContentLength > 0 {
		size = int(min(r.ContentLength, 16<<10)) + 1 // +1 so io.EOF needs no growth
	}
	buf := make([]byte, 0, size)
	for {
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			// net/http reports a client that sent less than Content-Length
			// as io.ErrUnexpectedEOF: a clean EOF short of it means someone
			// read the body before us.
			if int64(len(buf)) < r.ContentLength {
				return nil, fmt.Errorf("%w: %d of %d bytes left", ErrBodyConsumed, len(buf), r.ContentLength)
			}
			return buf, nil
		}
		if err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				return nil, fmt.Errorf("%w: %w", ErrBodyTooLarge, err)
			}
			if errors.Is(err, http.ErrBodyReadAfterClose) {
				return nil, fmt.Errorf("%w: body closed", ErrBodyConsumed)
			}
			return nil, fmt.Errorf("%w: reading body: %w", ErrEnvelope, err)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
