package bizcircletest

import (
	"net/url"
	"slices"
	"strings"
)

// A Call is one request the [APIHandler] received, as it received it, and
// its answer.
type Call struct {
	Method string
	// Host is the host the client called, such as api.mch.weixin.qq.com.
	Host string
	// Path is the path as sent, still escaped.
	Path  string
	Query url.Values
	// Body is the raw body, nil when empty; JSON is the body decoded
	// (numbers as json.Number), nil when the body is empty or not a JSON
	// object.
	Body []byte
	JSON map[string]any
	// Status is the status the server answered; 0 when it dropped the
	// connection instead.
	Status int
	// Answer is the body answered, nil when empty: the {"code","message"}
	// of a failure.
	Answer []byte
}

// Calls returns a copy of the calls received so far, oldest first,
// certificate downloads and rejected calls included; none while an
// [APIHandler.OnCall] function takes them.
func (s *APIHandler) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls received so far whose path starts with prefix.
func (s *APIHandler) CallsTo(prefix string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if strings.HasPrefix(c.Path, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// LastCall returns the latest call, and whether there was one.
func (s *APIHandler) LastCall() (Call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return Call{}, false
	}
	return s.calls[len(s.calls)-1], true
}

// Reset forgets the recorded calls and queued failures.
func (s *APIHandler) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.faults = nil, nil
}

// record keeps c, or hands it to the OnCall function.
func (s *APIHandler) record(c Call) {
	s.mu.Lock()
	onCall := s.onCall
	if onCall == nil {
		s.calls = append(s.calls, c)
	}
	s.mu.Unlock()
	if onCall != nil {
		onCall(c)
	}
}

// OnCall makes the handler hand each call to f once answered, instead of
// keeping it for [APIHandler.Calls]: a long-running server, such as
// 'bizcircle fakeapi', prints its calls without keeping them all. f may be
// called concurrently, from the goroutines serving the calls. A nil f keeps
// the calls again.
func (s *APIHandler) OnCall(f func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = f
}
