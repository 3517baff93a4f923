package bizcircle

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
)

// Wire constants of WeChat Pay's notifications.
const (
	SignatureType   = "WECHATPAY2-SHA256-RSA2048"
	AlgorithmAESGCM = "AEAD_AES_256_GCM"
	// SignTestPrefix starts the deliberately wrong signatures WeChat Pay
	// sends to check that merchants verify.
	SignTestPrefix = "WECHATPAY/SIGNTEST/"
)

// Notification request headers.
const (
	HeaderTimestamp     = "Wechatpay-Timestamp"
	HeaderNonce         = "Wechatpay-Nonce"
	HeaderSignature     = "Wechatpay-Signature"
	HeaderSerial        = "Wechatpay-Serial"
	HeaderSignatureType = "Wechatpay-Signature-Type"
	HeaderRequestID     = "Request-Id" // canonical form of Request-ID
)

// A Decoder verifies and decrypts notifications given their headers and raw
// body, for any framework; [VerifyAndDecrypt] is built on it. A Decoder is
// safe for concurrent use; its zero value is not usable: create one with
// [NewDecoder].
type Decoder struct {
	aeads     []cipher.AEAD // the primary key's, then WithAPIv3Keys'
	verifier  auth.Verifier
	now       func() time.Time
	tolerance time.Duration
	maxBody   int64
	rejects   *sampledLog // rejected requests: anyone can send them
	scans     *sampledLog // wrong methods and sources: scanners
	faults    *sampledLog // misconfigurations, such as a consumed body
	observer  func(Observation)
	hooks     hooks
	allowed   func(*http.Request) bool
}

// NewDecoder returns a Decoder that verifies signatures with verifier (any
// wechatpay-go auth.Verifier: platform certificates, a WeChat Pay public key,
// or the combined one used while migrating) and decrypts with apiV3Key. It
// uses the options WithClock, WithTolerance, WithMaxBodyBytes, WithAPIv3Keys,
// WithAllowedIPs, WithLogger, WithObserver and WithHook. A key that is not 32 bytes, a
// nil verifier or an invalid option (the dispatcher's included, such as two
// [On] for one event type) is an error.
func NewDecoder(apiV3Key string, verifier auth.Verifier, opts ...Option) (*Decoder, error) {
	if len(apiV3Key) != 32 {
		return nil, fmt.Errorf("bizcircle: APIv3 key must be 32 bytes, got %d", len(apiV3Key))
	}
	if verifier == nil || isNilPointer(verifier) {
		return nil, errors.New("bizcircle: nil verifier")
	}
	c := newConfig(opts)
	if c.err != nil {
		return nil, c.err
	}
	keys := append([]string{apiV3Key}, c.apiV3Keys...)
	aeads := make([]cipher.AEAD, len(keys))
	for i, k := range keys {
		if slices.Index(keys, k) != i {
			return nil, errors.New("bizcircle: WithAPIv3Keys: a key is given twice")
		}
		block, err := aes.NewCipher([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("bizcircle: %w", err)
		}
		if aeads[i], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("bizcircle: %w", err)
		}
	}
	return &Decoder{
		aeads:     aeads,
		verifier:  verifier,
		now:       c.now,
		tolerance: c.tolerance,
		maxBody:   c.maxBody,
		rejects:   newSampledLog(c.logger, "notifications rejected"),
		scans:     newSampledLog(c.logger, "requests of other methods or sources refused"),
		faults:    newSampledLog(c.logger, "requests with a consumed body"),
		observer:  c.observer,
		hooks:     c.hooks,
		allowed:   c.allowed,
	}, nil
}

// isNilPointer catches a typed nil, such as a nil *verifiers.SHA256WithRSAVerifier,
// which would otherwise pass the nil check and panic on the first request.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// envelope is the notification body as sent.
type envelope struct {
	ID           string `json:"id"`
	CreateTime   string `json:"create_time"`
	ResourceType string `json:"resource_type"`
	EventType    string `json:"event_type"`
	Summary      string `json:"summary"`
	Resource     struct {
		OriginalType   string `json:"original_type"`
		Algorithm      string `json:"algorithm"`
		Ciphertext     string `json:"ciphertext"`
		AssociatedData string `json:"associated_data"`
		Nonce          string `json:"nonce"`
	} `json:"resource"`
}

// Decode verifies the signature over body with the Wechatpay-* headers (in
// any letter case), then parses the envelope and decrypts its resource.
// Nothing is parsed or decrypted before the signature verifies; a body over
// WithMaxBodyBytes is refused first. Errors wrap one of the package's Err
// values; answer them with [StatusCode] and [AnswerBody].
func (d *Decoder) Decode(ctx context.Context, header http.Header, body []byte) (*Notification, error) {
	start := time.Now()
	header = canonicalHeader(header)
	ctx, end := d.hooks.start(ctx, Delivery{Header: header})
	if end != nil {
		defer end()
	}
	var n *Notification
	var err error
	if int64(len(body)) > d.maxBody {
		err = fmt.Errorf("%w: %w", ErrBodyTooLarge, &http.MaxBytesError{Limit: d.maxBody})
	} else {
		n, err = d.decode(ctx, header, body, true)
	}
	d.report(ctx, start, n, header, err)
	return n, err
}

// DecodeStored is [Decoder.Decode] without the timestamp window, for a
// notification that Decode accepted and that was stored to be processed
// later (queue mode checks each stored job again before running it). It
// neither logs nor reports to the observer: the worker reports what it
// refuses with [Dispatcher.ReportStored].
func (d *Decoder) DecodeStored(ctx context.Context, header http.Header, body []byte) (*Notification, error) {
	return d.decode(ctx, canonicalHeader(header), body, false)
}

// canonicalHeader returns h with canonical names, copying it only when a
// gateway handed over other letter cases.
func canonicalHeader(h http.Header) http.Header {
	for k := range h {
		if textproto.CanonicalMIMEHeaderKey(k) != k {
			c := make(http.Header, len(h))
			for k, vs := range h {
				ck := textproto.CanonicalMIMEHeaderKey(k)
				c[ck] = append(c[ck], vs...)
			}
			return c
		}
	}
	return h
}

func (d *Decoder) decode(ctx context.Context, header http.Header, body []byte, checkTime bool) (*Notification, error) {
	signed, err := d.verify(ctx, header, body, checkTime)
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := unmarshalEnvelope(body, &env); err != nil {
		return nil, fmt.Errorf("%w: not JSON", ErrEnvelope)
	}
	r := env.Resource
	switch {
	case env.ID == "" || env.EventType == "":
		return nil, fmt.Errorf("%w: no id or event_type", ErrEnvelope)
	case r.Ciphertext == "" || r.Nonce == "":
		return nil, fmt.Errorf("%w: no resource ciphertext or nonce", ErrEnvelope)
	case r.Algorithm != AlgorithmAESGCM:
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, clean(r.Algorithm))
	case len(r.Nonce) != d.aeads[0].NonceSize():
		return nil, fmt.Errorf("%w: nonce is not %d bytes", ErrDecrypt, d.aeads[0].NonceSize())
	}
	sealed, err := base64.StdEncoding.DecodeString(r.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext is not base64", ErrDecrypt)
	}
	plaintext, keyIndex, err := d.open(sealed, []byte(r.Nonce), []byte(r.AssociatedData))
	if err != nil {
		return nil, err
	}
	created, _ := time.Parse(time.RFC3339, env.CreateTime)
	return &Notification{
		ID:             env.ID,
		CreateTime:     created,
		EventType:      env.EventType,
		ResourceType:   env.ResourceType,
		Summary:        env.Summary,
		OriginalType:   r.OriginalType,
		Algorithm:      r.Algorithm,
		AssociatedData: r.AssociatedData,
		Serial:         signed.Serial,
		RequestID:      clean(header.Get(HeaderRequestID)),
		KeyIndex:       keyIndex,
		Plaintext:      plaintext,
		Signed:         signed,
	}, nil
}

// open decrypts with each key in turn. A failed AES-GCM open costs about a
// microsecond and leaves sealed intact, so the next key gets the original.
func (d *Decoder) open(sealed, nonce, ad []byte) ([]byte, int, error) {
	for i, aead := range d.aeads {
		dst := []byte(nil)
		if i == len(d.aeads)-1 {
			dst = sealed[:0] // the last try may decrypt in place
		}
		if plaintext, err := aead.Open(dst, nonce, sealed, ad); err == nil {
			return plaintext, i, nil
		}
	}
	return nil, 0, fmt.Errorf("%w: authentication failed", ErrDecrypt)
}

// verify checks the headers, the timestamp window (if checkTime) and the
// signature over "timestamp\nnonce\nbody\n", and returns what verified.
func (d *Decoder) verify(ctx context.Context, header http.Header, body []byte, checkTime bool) (SignedRequest, error) {
	if t := header.Get(HeaderSignatureType); t != "" && t != SignatureType {
		return SignedRequest{}, fmt.Errorf("%w: unsupported %s", ErrHeader, HeaderSignatureType)
	}
	var vals [4]string
	for i, name := range [...]string{HeaderTimestamp, HeaderNonce, HeaderSignature, HeaderSerial} {
		if vals[i] = strings.TrimSpace(header.Get(name)); vals[i] == "" {
			return SignedRequest{}, fmt.Errorf("%w: missing %s", ErrHeader, name)
		}
	}
	s := SignedRequest{Timestamp: vals[0], Nonce: vals[1], Signature: vals[2], Serial: vals[3], Body: body}
	sec, err := strconv.ParseInt(s.Timestamp, 10, 64)
	if err != nil {
		return SignedRequest{}, fmt.Errorf("%w: malformed %s", ErrHeader, HeaderTimestamp)
	}
	if checkTime && !within(sec, d.now(), d.tolerance) {
		return SignedRequest{}, ErrTimestamp
	}
	if strings.HasPrefix(s.Signature, SignTestPrefix) {
		return SignedRequest{}, fmt.Errorf("%w: signature probe", ErrSignature)
	}
	var msg strings.Builder
	msg.Grow(len(s.Timestamp) + len(s.Nonce) + len(body) + 3)
	msg.WriteString(s.Timestamp)
	msg.WriteByte('\n')
	msg.WriteString(s.Nonce)
	msg.WriteByte('\n')
	msg.Write(body)
	msg.WriteByte('\n')
	if err := d.verifier.Verify(ctx, s.Serial, msg.String(), s.Signature); err != nil {
		// Before verification every header is the sender's choice: only a
		// short, printable form of the serial goes into the error.
		return SignedRequest{}, fmt.Errorf("%w: serial %s: %w", ErrSignature, clean(s.Serial), boundError(err, s.Serial))
	}
	return s, nil
}

func (d *Decoder) report(ctx context.Context, start time.Time, n *Notification, header http.Header, err error) {
	switch {
	case err == nil:
	case errors.Is(err, ErrBodyConsumed):
		d.faults.log(ctx, slog.LevelError, "bizcircle: the request body was already read before VerifyAndDecrypt: "+
			"a body-logging or binding middleware (gin's c.Bind or c.GetRawData, echo's BodyDump) or a proxy handler drained it; "+
			"mount the endpoint before that middleware, or give it back the raw bytes in r.Body",
			slog.String("request_id", clean(header.Get(HeaderRequestID))))
	default:
		// Scanners and other sources are noise: Info, not Warn, and sampled
		// apart, so they cannot crowd out failed signatures.
		level, sample := slog.LevelWarn, d.rejects
		if errors.Is(err, ErrMethod) || errors.Is(err, ErrSourceIP) {
			level, sample = slog.LevelInfo, d.scans
		}
		sample.log(ctx, level, "bizcircle: notification rejected",
			slog.String("request_id", clean(header.Get(HeaderRequestID))), slog.String("error", err.Error()))
	}
	if d.observer == nil && len(d.hooks) == 0 {
		return
	}
	o := Observation{Outcome: OutcomeVerified, RequestID: clean(header.Get(HeaderRequestID)), Err: err, Duration: time.Since(start)}
	if err != nil {
		o.Outcome = OutcomeRejected
	} else {
		o.EventType, o.NotificationID = n.EventType, n.ID
	}
	if d.observer != nil {
		d.observer(o)
	}
	d.hooks.observe(ctx, o)
}
