package bizcircle

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
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
	aead      cipher.AEAD
	verifier  auth.Verifier
	now       func() time.Time
	tolerance time.Duration
	maxBody   int64
	logger    *slog.Logger
	observer  func(Observation)
	allowed   func(*http.Request) bool
}

// NewDecoder returns a Decoder that verifies signatures with verifier (any
// wechatpay-go auth.Verifier: platform certificates, a WeChat Pay public key,
// or the combined one used while migrating) and decrypts with apiV3Key. It
// uses the options WithClock, WithTolerance, WithMaxBodyBytes, WithLogger and
// WithObserver. A key that is not 32 bytes, a nil verifier or an invalid
// option is an error.
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
	block, err := aes.NewCipher([]byte(apiV3Key))
	if err != nil {
		return nil, fmt.Errorf("bizcircle: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("bizcircle: %w", err)
	}
	return &Decoder{
		aead:      aead,
		verifier:  verifier,
		now:       c.now,
		tolerance: c.tolerance,
		maxBody:   c.maxBody,
		logger:    c.logger,
		observer:  c.observer,
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

// Decode verifies the signature over body with the Wechatpay-* headers, then
// parses the envelope and decrypts its resource. Nothing is parsed or
// decrypted before the signature verifies. Errors wrap one of the package's
// Err values; answer them with [StatusCode] and [AnswerBody].
func (d *Decoder) Decode(ctx context.Context, header http.Header, body []byte) (*Notification, error) {
	start := time.Now()
	n, err := d.decode(ctx, header, body)
	d.report(ctx, start, n, header, err)
	return n, err
}

func (d *Decoder) decode(ctx context.Context, header http.Header, body []byte) (*Notification, error) {
	serial, err := d.verify(ctx, header, body)
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: not JSON", ErrEnvelope)
	}
	r := env.Resource
	switch {
	case env.ID == "" || env.EventType == "":
		return nil, fmt.Errorf("%w: no id or event_type", ErrEnvelope)
	case r.Ciphertext == "" || r.Nonce == "":
		return nil, fmt.Errorf("%w: no resource ciphertext or nonce", ErrEnvelope)
	case r.Algorithm != AlgorithmAESGCM:
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, r.Algorithm)
	case len(r.Nonce) != d.aead.NonceSize():
		return nil, fmt.Errorf("%w: nonce is not %d bytes", ErrDecrypt, d.aead.NonceSize())
	}
	sealed, err := base64.StdEncoding.DecodeString(r.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext is not base64", ErrDecrypt)
	}
	plaintext, err := d.aead.Open(sealed[:0], []byte(r.Nonce), sealed, []byte(r.AssociatedData))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrDecrypt)
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
		Serial:         serial,
		RequestID:      header.Get(HeaderRequestID),
		Plaintext:      plaintext,
	}, nil
}

// verify checks the headers, the timestamp window and the signature over
// "timestamp\nnonce\nbody\n", and returns the verifying serial.
func (d *Decoder) verify(ctx context.Context, header http.Header, body []byte) (string, error) {
	if t := header.Get(HeaderSignatureType); t != "" && t != SignatureType {
		return "", fmt.Errorf("%w: unsupported %s", ErrHeader, HeaderSignatureType)
	}
	var vals [4]string
	for i, name := range [...]string{HeaderTimestamp, HeaderNonce, HeaderSignature, HeaderSerial} {
		if vals[i] = strings.TrimSpace(header.Get(name)); vals[i] == "" {
			return "", fmt.Errorf("%w: missing %s", ErrHeader, name)
		}
	}
	ts, nonce, signature, serial := vals[0], vals[1], vals[2], vals[3]
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: malformed %s", ErrHeader, HeaderTimestamp)
	}
	// Bound sec by now±tolerance rather than subtracting: any int64 sec
	// is then safe from overflow.
	now, tol := d.now().Unix(), int64(d.tolerance/time.Second)
	if sec < now-tol || sec > now+tol {
		return "", ErrTimestamp
	}
	if strings.HasPrefix(signature, SignTestPrefix) {
		return "", fmt.Errorf("%w: signature probe", ErrSignature)
	}
	var msg strings.Builder
	msg.Grow(len(ts) + len(nonce) + len(body) + 3)
	msg.WriteString(ts)
	msg.WriteByte('\n')
	msg.WriteString(nonce)
	msg.WriteByte('\n')
	msg.Write(body)
	msg.WriteByte('\n')
	if err := d.verifier.Verify(ctx, serial, msg.String(), signature); err != nil {
		return "", fmt.Errorf("%w: serial %s: %w", ErrSignature, serial, err)
	}
	return serial, nil
}

func (d *Decoder) report(ctx context.Context, start time.Time, n *Notification, header http.Header, err error) {
	if err != nil {
		// Scanners and other sources are noise: Info, not Warn.
		level := slog.LevelWarn
		if errors.Is(err, ErrMethod) || errors.Is(err, ErrSourceIP) {
			level = slog.LevelInfo
		}
		d.logger.LogAttrs(ctx, level, "bizcircle: notification rejected",
			slog.String("request_id", header.Get(HeaderRequestID)), slog.String("error", err.Error()))
	}
	if d.observer == nil {
		return
	}
	o := Observation{Outcome: OutcomeVerified, RequestID: header.Get(HeaderRequestID), Err: err, Duration: time.Since(start)}
	if err != nil {
		o.Outcome = OutcomeRejected
	} else {
		o.EventType, o.NotificationID = n.EventType, n.ID
	}
	d.observer(o)
}
