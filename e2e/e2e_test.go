// Package e2e tests the real margen binary: built once, started as separate
// processes on real databases, driven over real HTTP, killed with SIGKILL.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen/store/storetest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "margen-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "margen")
	// Every process of these tests shares one audit key, kept here rather
	// than in the user's config directory (where serve would put it for
	// PostgreSQL).
	os.Setenv("MARGEN_AUDIT_KEY_FILE", filepath.Join(dir, "audit-key"))
	build := exec.Command("go", "build", "-o", binary, "../cmd/margen")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building margen:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var touched sync.Once

// touchSources opens every source file of the module (once, from inside a
// test: opens are only recorded once the tests run). These tests run a
// binary built from sources this package does not import, so without this
// "go test" would reuse a cached result after the binary's code changed: the
// test cache keys on the files a test opens.
func touchSources() { touched.Do(walkSources) }

func walkSources() {
	filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != ".." {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".sql", ".yaml", ".json", ".mod", ".sum":
			if f, err := os.Open(path); err == nil {
				f.Close()
			}
		}
		return nil
	})
}

const budgetPolicy = `
currency: EUR
actions:
  - id: courtesy_gift
    label: {es: "Cortesía", en: "Courtesy gift"}
roles:
  - id: owner
    label: {es: "Dueña", en: "Owner"}
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
budgets:
  - id: member_daily
    scope: member
    period: day
    limit: 10000
grants:
  - id: gift
    role: frontline
    actions: [courtesy_gift]
    max_amount: 100
    budgets: [member_daily]
    above: none
`

// margen runs a CLI command to completion and returns its stdout.
func margen(t *testing.T, args ...string) string {
	t.Helper()
	touchSources()
	var out, errb bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("margen %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

var tokenRE = regexp.MustCompile(`mgn_[A-Za-z0-9_-]{20,}`)

// setupOrg creates an organisation with a frontline member under the budget
// policy and returns that member's API token.
func setupOrg(t *testing.T, db string) string {
	t.Helper()
	margen(t, "migrate", "--db", db)
	margen(t, "org", "create", "--db", db, "--slug", "e2e", "--name", "E2E", "--currency", "EUR",
		"--timezone", "Europe/Madrid", "--owner", "boss")
	margen(t, "member", "add", "--db", db, "--org", "e2e", "--login", "ana", "--name", "Ana",
		"--access", "frontline", "--role", "frontline")
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte(budgetPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	margen(t, "policy", "publish", "--db", db, "--org", "e2e", pol)
	tok := tokenRE.FindString(margen(t, "token", "create", "--db", db, "--org", "e2e", "--member", "ana"))
	if tok == "" {
		t.Fatal("token create printed no token")
	}
	return tok
}

type server struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// start runs `margen serve` (with extra flags) and waits for its
// "listening" line.
func start(t *testing.T, db string, extra ...string) *server {
	t.Helper()
	touchSources()
	// Rate limits off: these tests drive one token as fast as they can.
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--rate-limit-token", "0", "--rate-limit-address", "0"}, extra...)
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "http://"); i >= 0 && strings.Contains(sc.Text(), "listening") {
				found <- strings.TrimSpace(sc.Text()[i:])
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(s.done) }()
	select {
	case s.url = <-found:
	case <-s.done:
		t.Fatalf("margen serve exited early:\n%s", logs.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("margen serve did not start:\n%s", logs.String())
	}
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) kill() {
	s.cmd.Process.Kill() // SIGKILL: no chance to flush anything
	<-s.done
}

type decisionReply struct {
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
}

func decide(client *http.Client, url, token, key string, amount int64, ref string) (int, decisionReply, http.Header, error) {
	body := fmt.Sprintf(`{"action":"courtesy_gift","amount":%d,"customer":{"ref":%q}}`, amount, ref)
	req, _ := http.NewRequest("POST", url+"/api/v1/decisions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, decisionReply{}, nil, err
	}
	defer resp.Body.Close()
	var d decisionReply
	err = json.NewDecoder(resp.Body).Decode(&d)
	return resp.StatusCode, d, resp.Header, err
}

// TestAcknowledgedSurvivesKill9: decisions acknowledged before a SIGKILL are
// all there after a restart, the ledger checks, and an idempotent retry after
// the restart replays the first answer.
func TestAcknowledgedSurvivesKill9(t *testing.T) {
	db := filepath.Join(t.TempDir(), "margen.db")
	token := setupOrg(t, db)
	srv := start(t, db)
	client := &http.Client{Timeout: 10 * time.Second}

	code, first, _, err := decide(client, srv.url, token, "retry-me", 10, "idem")
	if err != nil || code != 201 {
		t.Fatalf("first idempotent decision: %d %v", code, err)
	}

	var mu sync.Mutex
	var acked []string
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				code, d, _, err := decide(client, srv.url, token, "", 1, fmt.Sprintf("c-%d-%d", w, i))
				if err != nil {
					return // the server died under us: that request was never acknowledged
				}
				if code == 201 {
					mu.Lock()
					acked = append(acked, d.ID)
					mu.Unlock()
					n.Add(1)
				}
			}
		}()
	}
	for n.Load() < 600 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.kill() // mid-load
	cancel()
	wg.Wait()

	srv = start(t, db)
	for _, id := range acked {
		req, _ := http.NewRequest("GET", srv.url+"/api/v1/decisions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("acknowledged decision %s lost after kill -9: %d", id, resp.StatusCode)
		}
	}
	t.Logf("%d acknowledged decisions survived kill -9", len(acked))

	code, again, hdr, err := decide(client, srv.url, token, "retry-me", 10, "idem")
	if err != nil || code != 201 || again.ID != first.ID || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after restart: %d %+v replayed=%q %v; want replay of %s", code, again, hdr.Get("Idempotent-Replayed"), err, first.ID)
	}
	srv.kill()
	out := margen(t, "ledger", "check", "--db", db, "--org", "e2e")
	t.Log(strings.TrimSpace(out))
}

// TestTwoProcessesShareBudget: 1,000 concurrent 37-unit decisions split
// between two server processes on one PostgreSQL database allow exactly 270.
func TestTwoProcessesShareBudget(t *testing.T) {
	db := storetest.PostgresURL(t)
	token := setupOrg(t, db)
	a, b := start(t, db), start(t, db)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	var allowed, denied, failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 100)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			url := a.url
			if i%2 == 1 {
				url = b.url
			}
			code, d, _, err := decide(client, url, token, "", 37, fmt.Sprintf("c%d", i%40))
			switch {
			case err != nil || code != 201:
				failed.Add(1)
			case d.Outcome == "allowed":
				allowed.Add(1)
			case d.Outcome == "denied":
				denied.Add(1)
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 270 || denied.Load() != 730 || failed.Load() != 0 {
		t.Fatalf("allowed %d, denied %d, failed %d; want 270, 730, 0", allowed.Load(), denied.Load(), failed.Load())
	}
	margen(t, "ledger", "check", "--db", db, "--org", "e2e")
}
