package bizcircle_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBodyLimitOnTheWire sends oversized bodies over a real connection, as
// raw HTTP/1.1, so no client corrects a lying header.
func TestBodyLimitOnTheWire(t *testing.T) {
	cb := &recorder{}
	srv := httptest.NewServer(newEndpoint(t, platform, cb))
	defer srv.Close()
	big := strings.Repeat("x", 100<<10)
	tests := []struct {
		name    string
		request string
		want    int
	}{
		{"a chunked body over the limit",
			"POST /n HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big),
			http.StatusRequestEntityTooLarge},
		{"a Content-Length over the limit",
			"POST /n HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + big,
			http.StatusRequestEntityTooLarge},
		{"a Content-Length under the limit with more bytes behind it",
			"POST /n HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}" + big,
			http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go fmt.Fprint(conn, tc.request) // the server may answer before reading it all
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if cb.calls.Load() != 0 {
		t.Errorf("%d callbacks ran, want none", cb.calls.Load())
	}
}
