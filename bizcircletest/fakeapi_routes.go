package bizcircletest

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Paths the [APIHandler] serves.
const (
	PathCertificates       = "/v3/certificates"
	PathPointsNotify       = "/v3/businesscircle/points/notify"
	PathUserAuthorizations = "/v3/businesscircle/user-authorizations/" // + {openid}
	PathUsers              = "/v3/businesscircle/users/"               // + {openid}/points/commit_status
	PathParkings           = "/v3/businesscircle/parkings"
)

func (s *APIHandler) route(c *Call) answer {
	path := c.Path
	switch {
	case c.Method == http.MethodGet && path == PathCertificates:
		return s.certificates()
	case c.Method == http.MethodPost && path == PathPointsNotify:
		return checkFields(c, "transaction_id", "appid", "openid", "earn_points", "increased_points", "points_update_time")
	case c.Method == http.MethodPost && path == PathParkings:
		return checkFields(c, "brandid", "appid", "openid", "plate_number", "state", "time")
	case c.Method == http.MethodGet && strings.HasPrefix(path, PathUserAuthorizations):
		openid, ok := pathParam(strings.TrimPrefix(path, PathUserAuthorizations))
		if !ok {
			break
		}
		return s.authorization(c, openid)
	case c.Method == http.MethodGet && strings.HasPrefix(path, PathUsers) && strings.HasSuffix(path, "/points/commit_status"):
		openid, ok := pathParam(strings.TrimSuffix(strings.TrimPrefix(path, PathUsers), "/points/commit_status"))
		if !ok {
			break
		}
		return s.commit(c, openid)
	}
	return failureAnswer(Failure{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "no such API in bizcircletest"})
}

// pathParam unescapes one escaped path segment.
func pathParam(escaped string) (string, bool) {
	if escaped == "" || strings.Contains(escaped, "/") {
		return "", false
	}
	v, err := url.PathUnescape(escaped)
	return v, err == nil && v != ""
}

// checkFields answers 204 when the body has every field and its times are
// RFC 3339, else 400 PARAM_ERROR naming the field.
func checkFields(c *Call, fields ...string) answer {
	if c.JSON == nil {
		return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "body is not a JSON object"})
	}
	for _, f := range fields {
		v, ok := c.JSON[f]
		if !ok || v == nil || v == "" {
			return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", "missing " + f})
		}
		if f == "points_update_time" || f == "time" {
			if s, _ := v.(string); !isRFC3339(s) {
				return failureAnswer(Failure{http.StatusBadRequest, "PARAM_ERROR", f + " is not RFC 3339"})
			}
		}
	}
	return answer{status: http.StatusNoContent}
}

func isRFC3339(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}
