package queue_test

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// A proxy forwards TCP connections to PostgreSQL and can play the database
// going down (connections dropped and refused) or hanging (bytes held).
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	conns map[net.Conn]struct{}
	held  chan struct{} // closed to release hung connections
}

type proxyMode int

const (
	proxyUp   proxyMode = iota
	proxyDown           // drop every connection, refuse new ones
	proxyHung           // accept and forward nothing
)

// newProxy listens on 127.0.0.1 and forwards to the host of pgURL; it
// returns the proxy and pgURL pointing at it. It stops when the test ends.
func newProxy(t testing.TB, pgURL string) (*proxy, string) {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}, held: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.set(proxyDown)
	})
	u.Host = ln.Addr().String()
	return p, u.String()
}

// set switches the mode: down drops every open connection; up releases hung
// ones (they are dropped too: the bytes they held are gone).
func (p *proxy) set(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == proxyHung && m != proxyHung {
		close(p.held)
		p.held = make(chan struct{})
	}
	p.mode = m
	if m == proxyDown {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == proxyDown {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *proxy) handle(client net.Conn) {
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.copy(server, client); done <- struct{}{} }()
	go func() { p.copy(client, server); done <- struct{}{} }()
	<-done
}

// copy forwards src to dst, holding each chunk while the proxy hangs.
func (p *proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			mode, held := p.mode, p.held
			p.mu.Unlock()
			if mode == proxyHung {
				<-held
				return // the held bytes are lost: drop the connection
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
