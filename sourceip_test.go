package bizcircle_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

func TestWithAllowedIPs(t *testing.T) {
	fromHeader := func(r *http.Request) (netip.Addr, bool) {
		a, err := netip.ParseAddr(r.Header.Get("X-Proxy-Client-IP"))
		return a, err == nil
	}
	tests := []struct {
		name       string
		clientIP   func(*http.Request) (netip.Addr, bool)
		remoteAddr string
		proxied    string
		want       int
	}{
		{"a Shanghai Telecom address", nil, "101.226.103.17:4431", "", 204},
		{"a refund notification address", nil, "43.139.43.69:4431", "", 204},
		{"an IPv4-mapped IPv6 address", nil, "[::ffff:101.226.103.17]:4431", "", 204},
		{"an address outside the ranges", nil, "101.226.103.200:4431", "", 403},
		{"an unparsable RemoteAddr", nil, "somewhere", "", 403},
		{"the proxy's header, allowed", fromHeader, "10.0.0.1:80", "183.3.234.9", 204},
		{"the proxy's header, refused", fromHeader, "183.3.234.9:80", "10.0.0.1", 403},
		{"no proxy header", fromHeader, "183.3.234.9:80", "", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := &recorder{}
			h := newEndpoint(t, platform, cb, bizcircle.WithLogger(discardLogger),
				bizcircle.WithAllowedIPs(tc.clientIP, bizcircle.WeChatPayCallbackPrefixes...))
			r := platform.Payment(bizcircletest.SamplePayment()).Request("/notify")
			r.RemoteAddr = tc.remoteAddr
			if tc.proxied != "" {
				r.Header.Set("X-Proxy-Client-IP", tc.proxied)
			}
			w := serve(h, r)
			if w.Code != tc.want {
				t.Fatalf("status = %d, want %d", w.Code, tc.want)
			}
			if wantCalls := int64(map[bool]int{true: 1}[tc.want == 204]); cb.calls.Load() != wantCalls {
				t.Errorf("%d callbacks, want %d", cb.calls.Load(), wantCalls)
			}
			if tc.want == 403 && w.Body.String() != failBody("source address not allowed") {
				t.Errorf("body = %s", w.Body)
			}
		})
	}
}
