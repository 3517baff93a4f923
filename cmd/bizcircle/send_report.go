package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// sendStats counts every attempt's answer and keeps its latency.
type sendStats struct {
	statuses  map[int]int // status → attempts; 0 for no answer
	latencies []time.Duration
	shown     int // attempt lines printed
}

func (s *sendStats) add(a bizcircletest.Attempt) {
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	if a.Err != nil {
		s.statuses[0]++
		return
	}
	s.statuses[a.Status]++
	s.latencies = append(s.latencies, a.Latency)
}

// statusLine counts the answers per status, such as "answers: 204 ×19,
// 500 ×1".
func (s *sendStats) statusLine() string {
	var parts []string
	for _, status := range slices.Sorted(maps.Keys(s.statuses)) {
		if status != 0 {
			parts = append(parts, fmt.Sprintf("%d ×%d", status, s.statuses[status]))
		}
	}
	if n := s.statuses[0]; n > 0 {
		parts = append(parts, fmt.Sprintf("no answer ×%d", n))
	}
	return "answers: " + strings.Join(parts, ", ")
}

// latencyLine gives the latency percentiles of the answers, and the rate
// over elapsed; "" when nothing was answered.
func (s *sendStats) latencyLine(elapsed time.Duration) string {
	if len(s.latencies) == 0 {
		return ""
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	attempts := len(l) + s.statuses[0]
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("latency: p50 %v, p90 %v, p99 %v, max %v over %d answers; %d requests in %v (%.0f/s)",
		r(percentile(l, 50)), r(percentile(l, 90)), r(percentile(l, 99)), r(l[len(l)-1]), len(l),
		attempts, elapsed.Round(time.Millisecond), float64(attempts)/elapsed.Seconds())
}

// percentile returns the nearest-rank p-th percentile of sorted, which is
// not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// attemptLine reports one attempt: copy or event and attempt numbers,
// scheduled offset, status, latency and the body.
func attemptLine(i int, a bizcircletest.Attempt, o *sendOptions) string {
	var b strings.Builder
	switch {
	case o.events > 0:
		fmt.Fprintf(&b, "event %d ", i+1)
	case o.repeat > 1:
		fmt.Fprintf(&b, "copy %d ", i+1)
	}
	if o.retry {
		// WeChat Pay's offset, which --speed compressed.
		fmt.Fprintf(&b, "attempt %d (+%v) ", a.N, time.Duration(float64(a.Offset)*o.speed).Round(time.Second))
	}
	if a.Err != nil {
		fmt.Fprintf(&b, "→ error after %v: %v", a.Latency.Round(time.Microsecond), a.Err)
		return b.String()
	}
	fmt.Fprintf(&b, "→ %d %s in %v", a.Status, http.StatusText(a.Status), a.Latency.Round(time.Microsecond))
	if body := strings.TrimSpace(string(a.Body)); body != "" {
		const max = 200
		if len(body) > max {
			body = body[:max] + "…"
		}
		fmt.Fprintf(&b, ": %s", body)
	}
	return b.String()
}

// summarize describes a plaintext by its identifying fields, or its size.
func summarize(plaintext []byte) string {
	var f map[string]json.RawMessage
	if json.Unmarshal(plaintext, &f) != nil {
		return fmt.Sprintf("%d bytes", len(plaintext))
	}
	var parts []string
	for _, name := range []string{"openid", "transaction_id", "out_trade_no", "refund_id", "amount", "refund_amount", "code", "trade_state", "refund_status"} {
		raw, ok := f[name]
		if !ok {
			continue
		}
		var s string
		switch {
		case json.Unmarshal(raw, &s) == nil:
		case len(raw) > 0 && raw[0] != '{' && raw[0] != '[':
			s = string(raw)
		default:
			continue
		}
		if s != "" {
			parts = append(parts, name+"="+s)
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d bytes", len(plaintext))
	}
	return strings.Join(parts, " ")
}
