package bizcircle

import (
	"net"
	"net/http"
	"net/netip"
)

// WeChatPayCallbackPrefixes are the addresses WeChat Pay asks merchants
// with firewall rules to allow for callbacks, from its "回调通知注意事项"
// page (updated 2024-07-25): the Shanghai, Shenzhen and Hong Kong egress
// ranges, and the addresses added for refund notifications. WeChat Pay may
// change them; check that page before relying on them.
var WeChatPayCallbackPrefixes = []netip.Prefix{
	netip.MustParsePrefix("101.226.103.0/25"),   // Shanghai Telecom
	netip.MustParsePrefix("140.207.54.0/25"),    // Shanghai Unicom
	netip.MustParsePrefix("121.51.58.128/25"),   // Shanghai CAP
	netip.MustParsePrefix("183.3.234.0/25"),     // Shenzhen Telecom
	netip.MustParsePrefix("58.251.80.0/25"),     // Shenzhen Unicom
	netip.MustParsePrefix("121.51.30.128/25"),   // Shenzhen CAP
	netip.MustParsePrefix("203.205.219.128/25"), // Hong Kong
	netip.MustParsePrefix("175.24.214.208/32"),  // refund notifications
	netip.MustParsePrefix("175.24.211.24/32"),
	netip.MustParsePrefix("175.24.213.135/32"),
	netip.MustParsePrefix("109.244.180.23/32"),
	netip.MustParsePrefix("114.132.203.119/32"),
	netip.MustParsePrefix("43.139.43.69/32"),
}

// WithAllowedIPs makes the middleware refuse, with 403 and [ErrSourceIP],
// requests whose client address is in none of prefixes (for example
// [WeChatPayCallbackPrefixes]), before the body is read. It is an extra
// filter: the signature is what proves a notification came from WeChat Pay.
// clientIP returns the client's address; nil reads r.RemoteAddr, which
// behind a proxy or load balancer is the proxy's: then read the address your
// own proxy sets, and trust no header a client can set. Default: off.
func WithAllowedIPs(clientIP func(r *http.Request) (netip.Addr, bool), prefixes ...netip.Prefix) Option {
	if clientIP == nil {
		clientIP = remoteIP
	}
	return named("WithAllowedIPs", func(c *config) {
		if len(prefixes) == 0 {
			c.fail("WithAllowedIPs: no prefixes: every request would be refused")
			return
		}
		c.allowed = func(r *http.Request) bool {
			addr, ok := clientIP(r)
			if !ok {
				return false
			}
			addr = addr.Unmap()
			for _, p := range prefixes {
				if p.Contains(addr) {
					return true
				}
			}
			return false
		}
	})
}

// remoteIP returns the address in r.RemoteAddr.
func remoteIP(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	return addr, err == nil
}
