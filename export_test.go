package bizcircle

// Hooks for envelope_json_test.go, compiled only into the tests.
type (
	EnvelopeForTest    = envelope
	PaymentWireForTest = paymentWire
	RefundWireForTest  = refundWire
	LenientTimeForTest = lenientTime
)

var (
	DecodeEnvelopeFast = decodeEnvelopeFast
	UnmarshalEnvelope  = unmarshalEnvelope
	DecodeEventFast    = decodeEventFast
)
