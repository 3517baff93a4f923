package bizcircletest

import (
	"net/http"
	"time"
)

// UserAuthorization is what the [APIHandler] answers for a shopper's
// authorization query (授权查询). Zero times are left out of the answer.
type UserAuthorization struct {
	State           string // UNAUTHORIZED, AUTHORIZED or DEAUTHORIZED
	AuthorizeTime   time.Time
	DeauthorizeTime time.Time
}

// SetAuthorization sets what the authorization query answers for openid.
// Unset shoppers are UNAUTHORIZED.
func (s *APIHandler) SetAuthorization(openid string, a UserAuthorization) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorizations[openid] = a
}

// SetCommitStatus sets what the points commit status query answers for
// openid: PENDING or FINISHED. Unset shoppers are FINISHED.
func (s *APIHandler) SetCommitStatus(openid, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitStatus[openid] = status
}

func (s *APIHandler) authorization(c *Call, openid string) answer {
	if c.Query.Get("appid") == "" {
		return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "missing appid"})
	}
	s.mu.Lock()
	a, ok := s.authorizations[openid]
	s.mu.Unlock()
	if !ok {
		a.State = "UNAUTHORIZED"
	}
	out := map[string]string{"openid": openid, "authorize_state": a.State}
	if !a.AuthorizeTime.IsZero() {
		out["authorize_time"] = a.AuthorizeTime.In(shanghai).Format(time.RFC3339)
	}
	if !a.DeauthorizeTime.IsZero() {
		out["deauthorize_time"] = a.DeauthorizeTime.In(shanghai).Format(time.RFC3339)
	}
	return answer{http.StatusOK, mustJSON(out)}
}

func (s *APIHandler) commit(c *Call, openid string) answer {
	for _, f := range []string{"brandid", "appid"} {
		if c.Query.Get(f) == "" {
			return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "missing " + f})
		}
	}
	s.mu.Lock()
	status, ok := s.commitStatus[openid]
	s.mu.Unlock()
	if !ok {
		status = "FINISHED"
	}
	return answer{http.StatusOK, mustJSON(map[string]string{"points_commit_status": status})}
}
