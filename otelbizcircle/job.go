package otelbizcircle

import (
	"github.com/go-bizcircle/bizcircle"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// keyJobAttempt counts a queued job's runs, this one included: the
// messaging conventions have no attribute for it.
const keyJobAttempt = attribute.Key("bizcircle.job.attempt")

// jobAttributes are a worker's Consumer span's attributes, after
// OpenTelemetry's messaging conventions: the job is the message, processed
// ("process") from its queue. River is not a registered messaging.system,
// so it is the custom value the queue gives, "river".
func jobAttributes(j bizcircle.Job) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingSystemKey.String(j.System),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(j.Queue),
		semconv.MessagingMessageID(j.ID),
		keyJobAttempt.Int(j.Attempt),
	}
}
