package bizcircle

import (
	"errors"
	"net/http"
)

// Errors for rejected requests. Every error the package returns wraps exactly
// one of them (test with errors.Is); [StatusCode] maps it to the HTTP status
// the middleware answers. Messages never contain keys, plaintext or the
// request.
var (
	// ErrMethod: the request is not a POST (405).
	ErrMethod = errors.New("bizcircle: method not allowed")
	// ErrBodyTooLarge: the body is over the limit set by WithMaxBodyBytes
	// (413). The error also wraps the *http.MaxBytesError.
	ErrBodyTooLarge = errors.New("bizcircle: body too large")
	// ErrSourceIP: the client address is not allowed by WithAllowedIPs (403).
	ErrSourceIP = errors.New("bizcircle: source address not allowed")
	// ErrHeader: a Wechatpay-* header is missing or malformed, or the
	// signature type is not WECHATPAY2-SHA256-RSA2048 (401).
	ErrHeader = errors.New("bizcircle: missing or malformed Wechatpay header")
	// ErrTimestamp: Wechatpay-Timestamp is outside the tolerance window
	// set by WithTolerance, in either direction (401).
	ErrTimestamp = errors.New("bizcircle: timestamp outside the tolerance window")
	// ErrSignature: the signature does not verify, names an unknown serial,
	// or is WeChat Pay's WECHATPAY/SIGNTEST/ probe (401).
	ErrSignature = errors.New("bizcircle: signature verification failed")
	// ErrEnvelope: the verified body is not a notification envelope (400).
	ErrEnvelope = errors.New("bizcircle: malformed notification envelope")
	// ErrAlgorithm: resource.algorithm is not AEAD_AES_256_GCM (400).
	ErrAlgorithm = errors.New("bizcircle: unsupported resource algorithm")
	// ErrDecrypt: the resource does not decrypt with the APIv3 key (400).
	ErrDecrypt = errors.New("bizcircle: resource decryption failed")
	// ErrPlaintext: the decrypted resource is not the event's JSON, or lacks
	// the ID the event is deduplicated by (400).
	ErrPlaintext = errors.New("bizcircle: plaintext is not the event's JSON")
	// ErrBodyConsumed: something before the middleware read the body:
	// Content-Length promised bytes that were no longer there (500, so
	// WeChat Pay retries and nothing is lost once it is fixed). The log
	// names the usual causes.
	ErrBodyConsumed = errors.New("bizcircle: request body already consumed by an earlier handler")
	// ErrNotVerified: the handler got a request that did not pass through
	// VerifyAndDecrypt (500).
	ErrNotVerified = errors.New("bizcircle: request was not verified by VerifyAndDecrypt")
	// ErrCallback: a callback returned an error; it is wrapped too (500).
	ErrCallback = errors.New("bizcircle: callback failed")
	// ErrCallbackPanic: a callback panicked; the panic was recovered (500).
	ErrCallbackPanic = errors.New("bizcircle: callback panicked")
	// ErrDeduper: the Deduper failed, so the callback's outcome is unknown or
	// it did not run; its error is wrapped too (500).
	ErrDeduper = errors.New("bizcircle: deduper failed")
)

// StatusCode returns the HTTP status that answers err: 204 for nil, the
// status documented on each error above, and 500 for any other error
// (including [ErrInFlight]). Frameworks that are not net/http use it with
// [Decoder.Decode] and [Dispatcher.Dispatch].
func StatusCode(err error) int {
	if err == nil {
		return http.StatusNoContent
	}
	return answerFor(err).status
}

// AnswerBody returns the body that answers a failure, in WeChat Pay's
// format: {"code":"FAIL","message":"…"}, with a short fixed message per kind
// of error, never err's own text. It returns nil for nil.
func AnswerBody(err error) []byte {
	if err == nil {
		return nil
	}
	return answerFor(err).body
}

// answerFor returns the first of answers that err wraps, or the answer to an
// unknown error.
func answerFor(err error) answer {
	for _, a := range answers {
		if errors.Is(err, a.err) {
			return a
		}
	}
	return internalError
}

var internalError = answer{status: http.StatusInternalServerError, body: failBody("internal error")}

type answer struct {
	err    error
	status int
	body   []byte
}

// answers is searched in order: processing errors come first, because a
// callback's own error may wrap one of the rejection errors.
var answers = []answer{
	{ErrNotVerified, http.StatusInternalServerError, failBody("request was not verified")},
	{ErrCallbackPanic, http.StatusInternalServerError, failBody("callback panicked")},
	{ErrCallback, http.StatusInternalServerError, failBody("callback failed")},
	{ErrInFlight, http.StatusInternalServerError, failBody("event is being processed")},
	{ErrDeduper, http.StatusInternalServerError, failBody("deduper failed")},
	{ErrBodyConsumed, http.StatusInternalServerError, failBody("request body already consumed")},
	{ErrMethod, http.StatusMethodNotAllowed, failBody("method not allowed")},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge, failBody("body too large")},
	{ErrSourceIP, http.StatusForbidden, failBody("source address not allowed")},
	{ErrHeader, http.StatusUnauthorized, failBody("missing or malformed Wechatpay header")},
	{ErrTimestamp, http.StatusUnauthorized, failBody("timestamp outside the tolerance window")},
	{ErrSignature, http.StatusUnauthorized, failBody("signature verification failed")},
	{ErrEnvelope, http.StatusBadRequest, failBody("malformed notification envelope")},
	{ErrAlgorithm, http.StatusBadRequest, failBody("unsupported resource algorithm")},
	{ErrDecrypt, http.StatusBadRequest, failBody("resource decryption failed")},
	{ErrPlaintext, http.StatusBadRequest, failBody("plaintext is not the event's JSON")},
}

// failBody builds the answer at init, so answering allocates nothing. The
// messages are constants without characters that need JSON escaping.
func failBody(msg string) []byte {
	return []byte(`{"code":"FAIL","message":"` + msg + `"}`)
}

// WriteAnswer answers WeChat Pay for err: 204 for nil, else the status
// [StatusCode] gives with [AnswerBody] as JSON. Handlers of one's own behind
// [VerifyAndDecrypt] (queue mode's is one) answer with it.
func WriteAnswer(w http.ResponseWriter, err error) {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a := answerFor(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}
