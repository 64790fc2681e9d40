package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen/store/storetest"
)

// approvalPolicy sends every courtesy above 1,00 EUR to a supervisor, who
// may give up to 10,00 EUR.
const approvalPolicy = `
currency: EUR
actions:
  - id: courtesy_gift
    label: {es: "Cortesía", en: "Courtesy gift"}
roles:
  - id: owner
    label: {es: "Dueña", en: "Owner"}
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: supervisor
    label: {es: "Supervisora", en: "Supervisor"}
    inherits: [frontline]
approval:
  approver: supervisor
  sla: 10m
  on_timeout: deny
grants:
  - id: gift
    role: frontline
    actions: [courtesy_gift]
    max_amount: 100
  - id: supervisor_gift
    role: supervisor
    actions: [courtesy_gift]
    max_amount: 1000
`

// setupApprovals creates an organisation with a frontline member (ana) and
// a supervisor (sara) under approvalPolicy and returns their tokens.
func setupApprovals(t *testing.T, db string) (ana, sara string) {
	t.Helper()
	margen(t, "migrate", "--db", db)
	margen(t, "org", "create", "--db", db, "--slug", "e2e", "--name", "E2E", "--currency", "EUR",
		"--timezone", "Europe/Madrid", "--owner", "boss")
	margen(t, "member", "add", "--db", db, "--org", "e2e", "--login", "ana", "--name", "Ana",
		"--access", "frontline", "--role", "frontline")
	margen(t, "member", "add", "--db", db, "--org", "e2e", "--login", "sara", "--name", "Sara",
		"--access", "supervisor", "--role", "supervisor")
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte(approvalPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	margen(t, "policy", "publish", "--db", db, "--org", "e2e", pol)
	for _, m := range []struct {
		login string
		tok   *string
	}{{"ana", &ana}, {"sara", &sara}} {
		*m.tok = tokenRE.FindString(margen(t, "token", "create", "--db", db, "--org", "e2e", "--member", m.login))
		if *m.tok == "" {
			t.Fatalf("token create printed no token for %s", m.login)
		}
	}
	return ana, sara
}

type streamedEvent struct {
	id, typ string
	data    struct {
		Seq  int64 `json:"seq"`
		Data struct {
			ApprovalID string `json:"approval_id"`
			DecisionID string `json:"decision_id"`
		} `json:"data"`
	}
}

// subscribe opens GET /api/v1/events and sends each event on the channel;
// it returns once the server has answered (the subscription is live).
func subscribe(t *testing.T, ctx context.Context, url, token string) <-chan streamedEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan streamedEvent, 16)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev streamedEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" {
					out <- ev
				}
				ev = streamedEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &ev.data)
			}
		}
	}()
	return out
}

// TestEventsAcrossProcesses: an approver connected by SSE to one server
// process receives, within a second, a request made on another process
// sharing the PostgreSQL database; and the answer given on the second
// reaches the requester streaming from the first.
func TestEventsAcrossProcesses(t *testing.T) {
	db := storetest.PostgresURL(t)
	ana, sara := setupApprovals(t, db)
	a, b := start(t, db), start(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	approver := subscribe(t, ctx, b.url, sara)
	requester := subscribe(t, ctx, a.url, ana)
	client := &http.Client{Timeout: 10 * time.Second}

	wait := func(ch <-chan streamedEvent, typ string, within time.Duration) streamedEvent {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					t.Fatalf("stream closed before %s", typ)
				}
				if ev.typ == typ {
					return ev
				}
			case <-deadline:
				t.Fatalf("no %s within %s", typ, within)
			}
		}
	}

	for i := range 3 {
		start := time.Now()
		code, d, _, err := decide(client, a.url, ana, "", 500, fmt.Sprintf("mesa-%d", i+1))
		if err != nil || code != 201 || d.Outcome != "needs_approval" {
			t.Fatalf("decision on A: %d %+v %v", code, d, err)
		}
		ev := wait(approver, "approval.requested", time.Second)
		if ev.data.Data.DecisionID != d.ID || ev.id == "" {
			t.Fatalf("approver got %+v, want the request of %s", ev, d.ID)
		}
		t.Logf("request %d: made on A, received on B after %s", i+1, time.Since(start))

		start = time.Now()
		req, _ := http.NewRequest("POST", b.url+"/api/v1/approvals/"+ev.data.Data.ApprovalID+"/approve",
			strings.NewReader(`{"comment":"ok"}`))
		req.Header.Set("Authorization", "Bearer "+sara)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("approve on B: %d %s", resp.StatusCode, body)
		}
		got := wait(requester, "approval.decided", time.Second)
		if got.data.Data.ApprovalID != ev.data.Data.ApprovalID {
			t.Fatalf("requester got %+v", got)
		}
		t.Logf("answer %d: given on B, received on A after %s", i+1, time.Since(start))
	}
	cancel()
	margen(t, "ledger", "check", "--db", db, "--org", "e2e")
}

// TestServeEndsStreams: a SIGTERM ends the open event streams, so the
// server shuts down at once instead of waiting for them.
func TestServeEndsStreams(t *testing.T) {
	db := filepath.Join(t.TempDir(), "margen.db")
	_, sara := setupApprovals(t, db)
	srv := start(t, db)
	events := subscribe(t, context.Background(), srv.url, sara)
	began := time.Now()
	if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop with a stream open")
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	for range events { // drained: the stream was closed
	}
	t.Logf("stopped in %s with a stream open", time.Since(began))
}
