package bizcircle_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/google/go-cmp/cmp"
)

// sameTime compares times by instant and printed offset: both decoders get
// theirs from the same time.Parse call, but a fixed zone is a new pointer
// each time.
func sameTime(a, b time.Time) bool {
	return a.Equal(b) && a.Format(time.RFC3339Nano) == b.Format(time.RFC3339Nano)
}

var eventOpts = cmp.Options{
	cmp.Comparer(sameTime),
	cmp.Comparer(func(a, b bizcircle.LenientTimeForTest) bool { return sameTime(time.Time(a), time.Time(b)) }),
}

// corpusBytes returns the last []byte value of each file of a fuzz target's
// corpus in testdata/fuzz, to seed another target with it.
func corpusBytes(t testing.TB, target string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		last := lines[len(lines)-1]
		if lit, ok := strings.CutPrefix(last, "[]byte("); ok {
			if s, err := strconv.Unquote(strings.TrimSuffix(lit, ")")); err == nil {
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

// envelopeSeeds are real envelopes and the shapes the fast path must leave
// to encoding/json.
func envelopeSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		platform.Payment(bizcircletest.SamplePayment()).Body,
		platform.Refund(bizcircletest.SampleRefund(bizcircletest.SamplePayment())).Body,
		certPlatform.Authorization(bizcircletest.SampleAuthorization()).Body,
	}
	for _, s := range []string{
		`{}`,
		" {\t\"id\" :\r\n\"x\" , \"resource\" : { } } \n",
		`{"id":"1","event_type":"X","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAA","nonce":"123456789012"}}`,
		`{"id":"1","id":"2"}`,
		`{"id":"1","ID":"2"}`,
		`{"Event_Type":"X"}`,
		`{"createtime":"x","create-time":"y"}`,
		`{"resource":{"nonce":"n","nonce":"m"}}`,
		`{"resource":{"NONCE":"n"}}`,
		`{"resource":{},"resource":{"nonce":"n"}}`,
		`{"resource":null}`,
		`{"resource":"x"}`,
		`{"id":null}`,
		`{"id":1}`,
		`{"id":"a\u0041"}`,
		`{"id":"a\"b"}`,
		"{\"id\":\"\xff\"}",
		"{\"id\":\"\xed\xa0\x80\"}",
		"{\"id\":\"\t\"}",
		`{"summary":"支付成功"}`,
		"{\"\xe2\x84\xaad\":\"x\"}", // KELVIN SIGN + "d"
		`{"x":"y","n":-12,"t":true,"f":false,"z":null}`,
		`{"x":1.5}`,
		`{"x":1e3}`,
		`{"x":01}`,
		`{"x":[1]}`,
		`{"x":{}}`,
		`{"id":"x",}`,
		`{"id":"x"}x`,
		`{"id":"x"}{}`,
		`{"id" "x"}`,
		`{"id":"x"`,
		`[]`,
		`"x"`,
		`null`,
		``,
		"\xef\xbb\xbf{}",
	} {
		seeds = append(seeds, []byte(s))
	}
	return append(seeds, corpusBytes(t, "FuzzEnvelope")...)
}

// FuzzEnvelopeFastPath checks the envelope fast path against encoding/json:
// a handled input decodes exactly as json.Unmarshal decodes it, into a zero
// or a filled envelope; nothing json.Unmarshal refuses is handled; an input
// not handled leaves the envelope unchanged.
func FuzzEnvelopeFastPath(f *testing.F) {
	for _, s := range envelopeSeeds(f) {
		f.Add(s)
	}
	var filled bizcircle.EnvelopeForTest
	if err := json.Unmarshal(platform.Payment(bizcircletest.SamplePayment()).Body, &filled); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, start := range []bizcircle.EnvelopeForTest{{}, filled} {
			want := start
			wantErr := json.Unmarshal(body, &want)
			got := start
			if !bizcircle.DecodeEnvelopeFast(body, &got) {
				if diff := cmp.Diff(start, got); diff != "" {
					t.Fatalf("unhandled %q changed the envelope (-before +after):\n%s", body, diff)
				}
			} else {
				if wantErr != nil {
					t.Fatalf("handled %q, which encoding/json refuses: %v", body, wantErr)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("%q: fast path differs from encoding/json (-json +fast):\n%s", body, diff)
				}
			}
			got = start
			if err := bizcircle.UnmarshalEnvelope(body, &got); (err == nil) != (wantErr == nil) {
				t.Fatalf("%q: unmarshalEnvelope error %v, encoding/json %v", body, err, wantErr)
			} else if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%q: unmarshalEnvelope differs from encoding/json (-json +got):\n%s", body, diff)
			}
		}
	})
}

// eventSeeds are real plaintexts and the shapes the fast path must leave to
// encoding/json.
func eventSeeds(t testing.TB) [][]byte {
	payment := bizcircletest.SamplePayment()
	payment.CommitTag, payment.Code, payment.AuthType = "tag", "code", bizcircle.AuthRegistered
	seeds := [][]byte{
		platform.Payment(bizcircletest.SamplePayment()).Plaintext,
		platform.Payment(payment).Plaintext,
		platform.Refund(bizcircletest.SampleRefund(payment)).Plaintext,
		platform.Authorization(bizcircletest.SampleAuthorization()).Plaintext,
		// WeChat Pay's documented examples.
		[]byte(`{"mchid":"1230000109","merchant_name":"腾讯广场","shop_name":"微信支付","shop_number":"123456","appid":"wxd678efh567hg6787","openid":"oUpF8uN95-Ptaags6E_roPHg7AG0","time_end":"2015-05-20T13:29:35.120+08:00","amount":200,"transaction_id":"1234567890","commit_tag":"AUTH_HWSRDXTW"}`),
		[]byte(`{"mchid":"1230000109","merchant_name":"腾讯广场","shop_name":"微信支付","shop_number":"123456","appid":"wxd678efh567hg6787","openid":"oUpF8uN95-Ptaags6E_roPHg7AG0","refund_time":"2015-05-20T13:29:35.120+08:00","pay_amount":200,"refund_amount":100,"transaction_id":"1234567890","refund_id":"50000000382019052709732678859"}`),
	}
	for _, s := range []string{
		`{}`,
		`{"amount":0,"pay_amount":-0,"refund_amount":-7}`,
		`{"amount":01}`,
		`{"amount":-}`,
		`{"amount":123456789012345678}`,
		`{"amount":-123456789012345678}`,
		`{"amount":1234567890123456789}`,
		`{"amount":9223372036854775808}`,
		`{"amount":1e3}`,
		`{"amount":1.0}`,
		`{"amount":"1"}`,
		`{"amount":null}`,
		`{"Amount":1}`,
		`{"amount":1,"amount":2}`,
		`{"time_end":"2020-05-20T13:29:35.120+08:00","refund_time":"2020-05-20T13:29:35Z"}`,
		`{"time_end":"2020-05-20 13:29:35"}`,
		`{"time_end":"2020-05-20T13:29:35+08:00\u0000"}`,
		`{"time_end":null,"refund_time":5}`,
		`{"time_end":{}}`,
		`{"time_end":""}`,
		`{"openid":"o","code":"c","mchid":"m","auth_type":"REGISTERED_MODE"}`,
		`{"transaction_id":"1","am\x84ux0":1}`,
		`{"refund_id":"1","x":[{}]}`,
		`{"transactionid":"1"}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return append(seeds, corpusBytes(t, "FuzzPlaintext")...)
}

// FuzzEventFastPath checks the event fast paths against encoding/json, for
// each event shape, as FuzzEnvelopeFastPath does for the envelope.
func FuzzEventFastPath(f *testing.F) {
	for _, s := range eventSeeds(f) {
		f.Add(s)
	}
	full := []byte(`{"mchid":"m","merchant_name":"n","shop_name":"s","shop_number":"1","appid":"a","openid":"o",` +
		`"time_end":"2020-05-20T13:29:35+08:00","refund_time":"2020-05-20T13:29:35+08:00","amount":1,` +
		`"pay_amount":2,"refund_amount":3,"transaction_id":"t","refund_id":"r","commit_tag":"c","code":"k","auth_type":"x"}`)
	var pw bizcircle.PaymentWireForTest
	var rw bizcircle.RefundWireForTest
	var ae bizcircle.AuthorizationEvent
	for _, v := range []any{&pw, &rw, &ae} {
		if err := json.Unmarshal(full, v); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, plaintext []byte) {
		check := func(zero, filled any) {
			for _, start := range []any{zero, filled} {
				want := reflect.New(reflect.TypeOf(start))
				want.Elem().Set(reflect.ValueOf(start))
				wantErr := json.Unmarshal(plaintext, want.Interface())
				got := reflect.New(reflect.TypeOf(start))
				got.Elem().Set(reflect.ValueOf(start))
				if !bizcircle.DecodeEventFast(plaintext, got.Interface()) {
					if diff := cmp.Diff(start, got.Elem().Interface(), eventOpts); diff != "" {
						t.Fatalf("unhandled %q changed the %T (-before +after):\n%s", plaintext, start, diff)
					}
					continue
				}
				if wantErr != nil {
					t.Fatalf("handled %q as %T, which encoding/json refuses: %v", plaintext, start, wantErr)
				}
				if diff := cmp.Diff(want.Elem().Interface(), got.Elem().Interface(), eventOpts); diff != "" {
					t.Fatalf("%q as %T: fast path differs from encoding/json (-json +fast):\n%s", plaintext, start, diff)
				}
			}
		}
		check(bizcircle.PaymentWireForTest{}, pw)
		check(bizcircle.RefundWireForTest{}, rw)
		check(bizcircle.AuthorizationEvent{}, ae)
	})
}

// TestFastPathHandlesRealNotifications checks that what bizcircletest sends,
// as WeChat Pay does, takes the fast paths: else they would only cost.
func TestFastPathHandlesRealNotifications(t *testing.T) {
	payment := bizcircletest.SamplePayment()
	for _, m := range []*bizcircletest.Message{
		platform.Payment(payment),
		platform.Refund(bizcircletest.SampleRefund(payment)),
		certPlatform.Authorization(bizcircletest.SampleAuthorization()),
	} {
		t.Run(m.EventType, func(t *testing.T) {
			var env bizcircle.EnvelopeForTest
			if !bizcircle.DecodeEnvelopeFast(m.Body, &env) {
				t.Errorf("envelope not handled: %s", m.Body)
			}
			var v any
			switch m.EventType {
			case bizcircle.EventPayment:
				v = new(bizcircle.PaymentWireForTest)
			case bizcircle.EventRefund:
				v = new(bizcircle.RefundWireForTest)
			default:
				v = new(bizcircle.AuthorizationEvent)
			}
			if !bizcircle.DecodeEventFast(m.Plaintext, v) {
				t.Errorf("plaintext not handled: %s", m.Plaintext)
			}
		})
	}
}

// TestFastPathKnowsEveryField guards against a field added to a decoded
// struct but not to its fast path, which would then skip the new key: for
// every json tag of each struct, an object with only that key must be
// handled and decode as encoding/json decodes it.
func TestFastPathKnowsEveryField(t *testing.T) {
	for _, v := range []any{
		new(bizcircle.EnvelopeForTest), new(bizcircle.PaymentWireForTest),
		new(bizcircle.RefundWireForTest), new(bizcircle.AuthorizationEvent),
	} {
		for _, doc := range oneFieldObjects(t, reflect.TypeOf(v).Elem()) {
			t.Run(reflect.TypeOf(v).Elem().Name()+"/"+doc, func(t *testing.T) {
				want := reflect.New(reflect.TypeOf(v).Elem())
				if err := json.Unmarshal([]byte(doc), want.Interface()); err != nil {
					t.Fatal(err)
				}
				got := reflect.New(reflect.TypeOf(v).Elem())
				var handled bool
				if env, ok := got.Interface().(*bizcircle.EnvelopeForTest); ok {
					handled = bizcircle.DecodeEnvelopeFast([]byte(doc), env)
				} else {
					handled = bizcircle.DecodeEventFast([]byte(doc), got.Interface())
				}
				if !handled {
					t.Fatal("not handled")
				}
				if diff := cmp.Diff(want.Interface(), got.Interface(), eventOpts); diff != "" {
					t.Errorf("fast path differs from encoding/json (-json +fast):\n%s", diff)
				}
				if reflect.ValueOf(want.Elem().Interface()).IsZero() {
					t.Errorf("the sample value set nothing: %v", want.Elem().Interface())
				}
			})
		}
	}
}

// oneFieldObjects returns, for each json tag of struct type typ (through
// embedded and nested structs), a JSON object setting only that field.
func oneFieldObjects(t *testing.T, typ reflect.Type) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, f := range reflect.VisibleFields(typ) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous || name == "" || name == "-" || seen[name] {
			continue
		}
		seen[name] = true
		var value string
		switch {
		case f.Type == reflect.TypeFor[time.Time]() || f.Type == reflect.TypeFor[bizcircle.LenientTimeForTest]():
			value = `"2020-05-20T13:29:35.12+08:00"`
		case f.Type.Kind() == reflect.String:
			value = `"v"`
		case f.Type.Kind() == reflect.Int64:
			value = `-7`
		case f.Type.Kind() == reflect.Struct:
			for _, inner := range oneFieldObjects(t, f.Type) {
				out = append(out, `{"`+name+`":`+inner+`}`)
			}
			continue
		default:
			t.Fatalf("field %s: no sample for %v", f.Name, f.Type)
		}
		out = append(out, `{"`+name+`":`+value+`}`)
	}
	return out
}

// BenchmarkParse compares the fast paths with encoding/json on a real
// payment notification: the envelope, then the plaintext.
func BenchmarkParse(b *testing.B) {
	m := platform.Payment(bizcircletest.SamplePayment())
	b.Run("envelope/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var env bizcircle.EnvelopeForTest
			if err := json.Unmarshal(m.Body, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("envelope/fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var env bizcircle.EnvelopeForTest
			if err := bizcircle.UnmarshalEnvelope(m.Body, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("payment/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w bizcircle.PaymentWireForTest
			if err := json.Unmarshal(m.Plaintext, &w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("payment/fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w bizcircle.PaymentWireForTest
			if !bizcircle.DecodeEventFast(m.Plaintext, &w) {
				b.Fatal("not handled")
			}
		}
	})
}
