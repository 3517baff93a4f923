package bizcircletest

import "net/http"

// A Failure is an error answer of WeChat Pay's APIv3: a status and the
// {"code","message"} body.
type Failure struct {
	Status  int
	Code    string
	Message string
}

// The failures [APIHandler.FailNext] is usually told to give.
var (
	FailParamError       = Failure{http.StatusBadRequest, "PARAM_ERROR", "参数错误"}
	FailFrequencyLimited = Failure{http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限"}
	FailSystemError      = Failure{http.StatusInternalServerError, "SYSTEM_ERROR", "系统错误"}
)

// failSignature answers requests whose Authorization does not verify.
var failSignature = Failure{http.StatusUnauthorized, "SIGN_ERROR", "签名错误"}

// fault is one queued misbehaviour: a Failure, or a dropped connection when
// failure is nil.
type fault struct{ failure *Failure }

// FailNext makes the next n correctly signed API calls answer f instead of
// being served. Certificate downloads are not affected. Failures queue up
// behind earlier ones.
func (s *APIHandler) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{failure: &f})
	}
}

// DisconnectNext makes the next n correctly signed API calls close the
// connection without an answer: a network error for the client. It queues
// up like [APIHandler.FailNext].
func (s *APIHandler) DisconnectNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{})
	}
}

func (s *APIHandler) nextFault(path string) (fault, bool) {
	if path == PathCertificates {
		return fault{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func failureAnswer(f Failure) answer {
	return answer{f.Status, mustJSON(map[string]string{"code": f.Code, "message": f.Message})}
}
