package bizcircle

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// The JSON fast paths decode the two shapes WeChat Pay sends, the envelope
// and the event plaintexts, without reflection. Each accepts only the plain
// common form of its shape and says "not handled" for anything else, and
// the caller then uses encoding/json, so the result is encoding/json's by
// construction:
//
//   - the input is one object, with JSON whitespace anywhere it may be;
//   - keys are the struct's json tags exactly, each at most once (encoding/json
//     would keep the last); any other key must be ASCII, must not match a tag
//     ignoring case, '_' and '-', and must have a string, integer, true,
//     false or null value, which is ignored;
//   - string values, times included, have no backslash escapes, no control
//     characters and valid UTF-8; integers have at most 18 digits and no
//     fraction or exponent; resource is an object, never null.
//
// The key lists and switches below must follow the structs' json tags:
// TestFastPathKnowsEveryField fails for a tag they miss.
//
// FuzzEnvelopeFastPath and FuzzEventFastPath check, for any input, that a
// handled input decodes exactly as encoding/json decodes it, and that
// nothing encoding/json refuses is handled. The parser only ever sees bodies
// whose signature verified, and plaintexts that decrypted.

// unmarshalEnvelope is json.Unmarshal(body, env), without reflection for
// the envelopes WeChat Pay sends.
func unmarshalEnvelope(body []byte, env *envelope) error {
	if decodeEnvelopeFast(body, env) {
		return nil
	}
	return json.Unmarshal(body, env)
}

// decodeEventFast decodes plaintext into v, a *paymentWire, *refundWire or
// *AuthorizationEvent, exactly as json.Unmarshal(plaintext, v) would, and
// reports whether it did; when it did not, v is unchanged and the caller
// uses encoding/json.
func decodeEventFast(plaintext []byte, v any) bool {
	switch v := v.(type) {
	case *paymentWire:
		return decodePaymentFast(plaintext, v)
	case *refundWire:
		return decodeRefundFast(plaintext, v)
	case *AuthorizationEvent:
		return decodeAuthorizationFast(plaintext, v)
	}
	return false
}

// The json tags of each shape, for duplicates and the loose check on other
// keys.
var (
	envelopeKeys      = []string{"id", "create_time", "resource_type", "event_type", "summary", "resource"}
	resourceKeys      = []string{"original_type", "algorithm", "ciphertext", "associated_data", "nonce"}
	paymentKeys       = []string{"mchid", "merchant_name", "shop_name", "shop_number", "appid", "openid", "time_end", "amount", "transaction_id", "commit_tag", "code", "auth_type"}
	refundKeys        = []string{"mchid", "merchant_name", "shop_name", "shop_number", "appid", "openid", "refund_time", "pay_amount", "refund_amount", "transaction_id", "refund_id"}
	authorizationKeys = []string{"openid", "code", "mchid", "auth_type"}
)

// decodeEnvelopeFast decodes body into env as json.Unmarshal would, and
// reports whether it did; when it did not, env is unchanged. Like
// json.Unmarshal it keeps the fields of env that body does not set.
func decodeEnvelopeFast(body []byte, env *envelope) bool {
	e := *env
	r := &e.Resource
	s := scanner{b: body}
	var seen, rseen fieldSet
	resource := func(key []byte) bool {
		if i := indexOf(resourceKeys, key); i >= 0 && !rseen.add(i) {
			return false
		}
		switch string(key) {
		case "original_type":
			return s.str(&r.OriginalType)
		case "algorithm":
			return s.str(&r.Algorithm)
		case "ciphertext":
			return s.str(&r.Ciphertext)
		case "associated_data":
			return s.str(&r.AssociatedData)
		case "nonce":
			return s.str(&r.Nonce)
		}
		return s.skip(key, resourceKeys)
	}
	ok := s.object(func(key []byte) bool {
		if i := indexOf(envelopeKeys, key); i >= 0 && !seen.add(i) {
			return false
		}
		switch string(key) {
		case "id":
			return s.str(&e.ID)
		case "create_time":
			return s.str(&e.CreateTime)
		case "resource_type":
			return s.str(&e.ResourceType)
		case "event_type":
			return s.str(&e.EventType)
		case "summary":
			return s.str(&e.Summary)
		case "resource":
			return s.object(resource)
		}
		return s.skip(key, envelopeKeys)
	}) && s.end()
	if ok {
		*env = e
	}
	return ok
}

func decodePaymentFast(plaintext []byte, w *paymentWire) bool {
	p := *w
	s := scanner{b: plaintext}
	var seen fieldSet
	ok := s.object(func(key []byte) bool {
		if i := indexOf(paymentKeys, key); i >= 0 && !seen.add(i) {
			return false
		}
		switch string(key) {
		case "mchid":
			return s.str(&p.MchID)
		case "merchant_name":
			return s.str(&p.MerchantName)
		case "shop_name":
			return s.str(&p.ShopName)
		case "shop_number":
			return s.str(&p.ShopNumber)
		case "appid":
			return s.str(&p.AppID)
		case "openid":
			return s.str(&p.OpenID)
		case "time_end":
			return s.timeValue(&p.TimeEnd)
		case "amount":
			return s.intValue(&p.Amount)
		case "transaction_id":
			return s.str(&p.TransactionID)
		case "commit_tag":
			return s.str(&p.CommitTag)
		case "code":
			return s.str(&p.Code)
		case "auth_type":
			return s.str(&p.AuthType)
		}
		return s.skip(key, paymentKeys)
	}) && s.end()
	if ok {
		*w = p
	}
	return ok
}

func decodeRefundFast(plaintext []byte, w *refundWire) bool {
	r := *w
	s := scanner{b: plaintext}
	var seen fieldSet
	ok := s.object(func(key []byte) bool {
		if i := indexOf(refundKeys, key); i >= 0 && !seen.add(i) {
			return false
		}
		switch string(key) {
		case "mchid":
			return s.str(&r.MchID)
		case "merchant_name":
			return s.str(&r.MerchantName)
		case "shop_name":
			return s.str(&r.ShopName)
		case "shop_number":
			return s.str(&r.ShopNumber)
		case "appid":
			return s.str(&r.AppID)
		case "openid":
			return s.str(&r.OpenID)
		case "refund_time":
			return s.timeValue(&r.RefundTime)
		case "pay_amount":
			return s.intValue(&r.PayAmount)
		case "refund_amount":
			return s.intValue(&r.RefundAmount)
		case "transaction_id":
			return s.str(&r.TransactionID)
		case "refund_id":
			return s.str(&r.RefundID)
		}
		return s.skip(key, refundKeys)
	}) && s.end()
	if ok {
		*w = r
	}
	return ok
}

func decodeAuthorizationFast(plaintext []byte, e *AuthorizationEvent) bool {
	a := *e
	s := scanner{b: plaintext}
	var seen fieldSet
	ok := s.object(func(key []byte) bool {
		if i := indexOf(authorizationKeys, key); i >= 0 && !seen.add(i) {
			return false
		}
		switch string(key) {
		case "openid":
			return s.str(&a.OpenID)
		case "code":
			return s.str(&a.Code)
		case "mchid":
			return s.str(&a.MchID)
		case "auth_type":
			return s.str(&a.AuthType)
		}
		return s.skip(key, authorizationKeys)
	}) && s.end()
	if ok {
		*e = a
	}
	return ok
}

// fieldSet records the fields seen, to leave duplicate keys to encoding/json.
type fieldSet uint32

// add marks field i and reports whether it was new.
func (f *fieldSet) add(i int) bool {
	bit := fieldSet(1) << i
	if *f&bit != 0 {
		return false
	}
	*f |= bit
	return true
}

func indexOf(keys []string, key []byte) int {
	for i, k := range keys {
		if k == string(key) {
			return i
		}
	}
	return -1
}

// A scanner reads the plain JSON of the fast paths. Each method reports
// false for anything outside it, and the caller gives up.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume consumes c after optional whitespace.
func (s *scanner) consume(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// object reads an object, calling field after each key and its colon to
// consume the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		key, ok := s.plain()
		if !ok || !s.consume(':') || !field(key) {
			return false
		}
		if s.consume('}') {
			return true
		}
		if !s.consume(',') {
			return false
		}
	}
}

// plain reads a string with no escapes and no control characters, in valid
// UTF-8, and returns its contents: the same bytes encoding/json would give.
func (s *scanner) plain() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start, ascii := s.i+1, true
	for j := start; j < len(s.b); j++ {
		if plainASCII[s.b[j]] {
			continue
		}
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false // encoding/json would replace the bad bytes
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		default: // c >= utf8.RuneSelf
			ascii = false
		}
	}
	return nil, false
}

// plainASCII marks the bytes a string holds as they are: ASCII, except the
// control characters, '"' and '\\'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) str(dst *string) bool {
	v, ok := s.plain()
	if ok {
		*dst = string(v)
	}
	return ok
}

// timeValue reads a string as lenientTime.UnmarshalJSON does: RFC 3339, else zero.
func (s *scanner) timeValue(dst *lenientTime) bool {
	v, ok := s.plain()
	if ok {
		t, _ := time.Parse(time.RFC3339, string(v))
		*dst = lenientTime(t)
	}
	return ok
}

// intValue reads an integer of at most 18 digits, which fits an int64; a
// fraction or exponent after it fails the caller's next read.
func (s *scanner) intValue(dst *int64) bool {
	s.space()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var n int64
	for s.i < len(s.b) && s.i-start < 19 {
		c := s.b[s.i]
		if c < '0' || c > '9' || (s.i > start && s.b[start] == '0') {
			break
		}
		n = n*10 + int64(c-'0')
		s.i++
	}
	if digits := s.i - start; digits == 0 || digits > 18 {
		return false
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

// skip reads the value of a key that is not a json tag, if encoding/json
// would ignore it too. The key must be ASCII, so that no Unicode case folding
// applies (encoding/json folds the Kelvin sign to k), and must not match a
// tag loosely: ignoring case, as encoding/json does, and '_' and '-', as
// encoding/json/v2 can.
func (s *scanner) skip(key []byte, tags []string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, t := range tags {
		if looseEqual(key, t) {
			return false
		}
	}
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.plain()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		var n int64
		return s.intValue(&n)
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// looseEqual compares ASCII key and tag ignoring case, '_' and '-'.
func looseEqual(key []byte, tag string) bool {
	i, j := 0, 0
	for {
		for i < len(key) && (key[i] == '_' || key[i] == '-') {
			i++
		}
		for j < len(tag) && (tag[j] == '_' || tag[j] == '-') {
			j++
		}
		if i == len(key) || j == len(tag) {
			return i == len(key) && j == len(tag)
		}
		if lower(key[i]) != lower(tag[j]) {
			return false
		}
		i++
		j++
	}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
