package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-bizcircle/bizcircle/bizcircletest"
)

// send delivers o.count() notifications of plaintext, o.concurrency at a
// time, and reports.
func send(ctx context.Context, platform *bizcircletest.Platform, plaintext []byte, o *sendOptions, stdout io.Writer) int {
	// build returns the notification to deliver i-th: one message for all
	// the copies, a fresh event each time with --events.
	var build func(i int) *bizcircletest.Message
	fields := idFields(o.eventType)
	_, freshened := freshIDs(plaintext, fields)
	if o.events > 0 {
		build = func(int) *bizcircletest.Message {
			fresh, _ := freshIDs(plaintext, fields)
			return platform.Event(o.eventType, fresh)
		}
	} else {
		m := platform.Event(o.eventType, plaintext)
		build = func(int) *bizcircletest.Message { return m }
	}
	forge := func(m *bizcircletest.Message) *bizcircletest.Message {
		switch {
		case o.tamper:
			return tamper(m)
		case o.probe:
			return probe(m)
		}
		return m
	}

	n := o.count()
	if o.events > 0 {
		fmt.Fprintf(stdout, "sending %d %s events, %d at a time, to %s", n, o.eventType, min(o.concurrency, n), o.url)
		if len(freshened) > 0 {
			fmt.Fprintf(stdout, ", each with a fresh notification ID and %s", strings.Join(freshened, ", "))
		} else {
			fmt.Fprintf(stdout, ", each with a fresh notification ID (the plaintext has none of %s)", strings.Join(fields, ", "))
		}
	} else {
		m := build(0)
		fmt.Fprintf(stdout, "sending %s id=%s (%s) to %s", m.EventType, m.ID, summarize(m.Plaintext), o.url)
		if n > 1 {
			fmt.Fprintf(stdout, ", %d copies, %d at a time", n, min(o.concurrency, n))
		}
	}
	if f := o.forgery(); f != "" {
		fmt.Fprint(stdout, ", "+f)
	}
	fmt.Fprintln(stdout)

	base := bizcircletest.Deliverer{
		Platform: platform, // re-signs each attempt, with --stale's clock or --wrong-key's key
		Schedule: []time.Duration{},
		Client:   &http.Client{},
		Timeout:  o.timeout,
	}
	if o.tamper || o.probe {
		base.Platform = nil // re-signing would make the forgery valid
	}
	if o.retry {
		// WeChat Pay's schedule, each wait 1/speed as long; attemptLine
		// shows the attempts at WeChat Pay's offsets.
		base.Schedule = bizcircletest.RetrySchedule()
		for i, d := range base.Schedule {
			base.Schedule[i] = time.Duration(float64(d) / o.speed)
		}
	}
	const maxShown = 10 // unexpected answers printed with --events
	var (
		mu      sync.Mutex
		stats   sendStats
		results = make([]bizcircletest.Attempt, n) // each one's last attempt
		hidden  int
	)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(o.concurrency, n) {
		wg.Go(func() {
			for i := range jobs {
				d := base
				d.OnAttempt = func(a bizcircletest.Attempt) {
					mu.Lock()
					defer mu.Unlock()
					stats.add(a)
					switch {
					case o.events == 0, !o.expected(a) && stats.shown < maxShown:
						stats.shown++
						fmt.Fprintln(stdout, attemptLine(i, a, o))
					case !o.expected(a):
						hidden++
					}
				}
				attempts, _ := d.DeliverURL(ctx, o.url, forge(build(i)))
				if len(attempts) > 0 {
					results[i] = attempts[len(attempts)-1]
				}
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)

	acked, refusedN, failed := 0, 0, 0
	for _, a := range results {
		switch {
		case a.OK():
			acked++
		case refused(a):
			refusedN++
		default:
			failed++ // 5xx, another 2xx, transport error, or not sent
		}
	}
	if hidden > 0 {
		fmt.Fprintf(stdout, "… and %d more unexpected answers\n", hidden)
	}
	fmt.Fprintf(stdout, "%d sent: %d acknowledged (200/204), %d refused (4xx), %d failed (other status, no answer or not sent)\n", n, acked, refusedN, failed)
	if n > 1 || o.events > 0 {
		fmt.Fprintln(stdout, stats.statusLine())
		if line := stats.latencyLine(elapsed); line != "" {
			fmt.Fprintln(stdout, line)
		}
	}
	if o.forgery() != "" {
		if refusedN == n {
			fmt.Fprintln(stdout, "ok: the endpoint refused the notification, as it must")
			return exitOK
		}
		fmt.Fprintln(stdout, "FAIL: the endpoint must refuse this notification with a 4xx (bizcircle answers 401)")
		return exitFailure
	}
	if acked == n {
		return exitOK
	}
	return exitFailure
}
