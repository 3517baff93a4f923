package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle/testenv"
)

// TestServeWithRedis runs two receivers sharing one Redis, as two replicas:
// the same payment sent to both runs one callback. (Concurrent copies may get
// 500 "event is being processed" from Redis, and WeChat's retry then sees the
// outcome; one at a time, every copy gets 204.)
func TestServeWithRedis(t *testing.T) {
	addr := testenv.Server(t, "BIZCIRCLE_REDIS_ADDR", "start a redis-server to run this test")
	dir := filepath.Join(t.TempDir(), "keys")
	if r := runBinary(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	a := startServe(t, "--dir", dir, "--redis", addr)
	b := startServe(t, "--dir", dir, "--redis", addr)
	if !strings.Contains(a.seen[len(a.seen)-1], "Redis deduper at "+addr) {
		t.Fatalf("serve did not say it uses Redis: %s", a.seen[len(a.seen)-1])
	}
	id := fmt.Sprintf("42%026d", time.Now().UnixNano()) // fresh: Redis keeps keys 25 hours
	for _, srv := range []*served{a, b} {
		r := runBinary(t, "send", "--dir", dir, "--url", srv.url, "--transaction-id", id, "--repeat", "5")
		if r.code != 0 {
			t.Fatalf("send: %v", r)
		}
	}
	processed := 0
	for _, srv := range []*served{a, b} {
		for range 5 {
			if strings.Contains(srv.waitFor(t, "→ 204 "), "→ 204 processed") {
				processed++
			}
		}
	}
	if processed != 1 {
		t.Errorf("%d receivers processed the payment, want exactly 1", processed)
	}
}

func TestServeWithUnreachableRedis(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if r := runBinary(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	r := runBinary(t, "serve", "--dir", dir, "--addr", "127.0.0.1:0", "--redis", "127.0.0.1:1")
	if r.code != exitFailure || !strings.Contains(r.stderr, "redis 127.0.0.1:1") {
		t.Fatalf("serve with an unreachable Redis: %v", r)
	}
}
