package main

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-bizcircle/bizcircle"
	"github.com/go-bizcircle/bizcircle/bizcircletest"
	"github.com/go-bizcircle/bizcircle/internal/testenv"
	"github.com/go-bizcircle/bizcircle/queue"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestServesUIBesideEndpoint: the endpoint stores a signed payment; the UI
// refuses strangers, serves its page to the operator, and lists the job
// through its API without the OpenID.
func TestServesUIBesideEndpoint(t *testing.T) {
	url := testenv.Server(t, "BIZCIRCLE_PG_URL", "the River UI example needs PostgreSQL")
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	schema := "riverui_example_" + strings.ToLower(rand.Text()[:10])
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	quiet := slog.New(slog.DiscardHandler)
	if err := queue.Migrate(ctx, pool, queue.WithSchema(schema), queue.WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
	wechat := bizcircletest.NewPlatform()
	cb := bizcircle.CallbackFuncs{Payment: func(context.Context, *bizcircle.PaymentEvent) error { return nil }}
	h, q, err := newServer(ctx, pool, wechat.APIv3Key, wechat.Verifier(), cb, "s3cret", queue.WithSchema(schema), queue.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()

	payment := bizcircletest.SamplePayment()
	payment.OpenID = "oRIVERUI" + strings.ToLower(rand.Text()[:16])
	req, err := wechat.Payment(payment).NewRequest(ctx, srv.URL+"/wechat/bizcircle")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := do(t, req); status != http.StatusNoContent {
		t.Fatalf("notification: status %d, want 204", status)
	}

	get := func(path, user, password string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		return do(t, req)
	}
	if status, _ := get("/riverui/", "", ""); status != http.StatusUnauthorized {
		t.Errorf("UI without credentials: status %d, want 401", status)
	}
	if status, _ := get("/riverui/", operator, "wrong"); status != http.StatusUnauthorized {
		t.Errorf("UI with a wrong password: status %d, want 401", status)
	}
	if status, body := get("/riverui/", operator, "s3cret"); status != http.StatusOK || !strings.Contains(body, "<html") {
		t.Errorf("UI page: status %d, body %.200q; want 200 and HTML", status, body)
	}
	status, body := get("/riverui/api/jobs?state=available", operator, "s3cret")
	if status != http.StatusOK || !strings.Contains(body, queue.KindNotification) {
		t.Errorf("UI jobs API: status %d, body %.300q; want 200 listing a %s job", status, body, queue.KindNotification)
	}
	if strings.Contains(body, payment.OpenID) {
		t.Errorf("the UI's job list shows the OpenID")
	}
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
