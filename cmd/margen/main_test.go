package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/policy"
	"github.com/margenhq/margen/store"
)

// margenRun runs the binary in-process and returns what it printed.
func margenRun(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// mustRun runs a command that must succeed.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := margenRun(t, args...)
	if err != nil {
		t.Fatalf("margen %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// mustFail runs a command that must fail with a message containing want.
func mustFail(t *testing.T, want string, args ...string) {
	t.Helper()
	_, errOut, err := margenRun(t, args...)
	if err == nil {
		t.Fatalf("margen %s succeeded, want an error containing %q", strings.Join(args, " "), want)
	}
	if msg := describe(err) + "\n" + errOut; !strings.Contains(msg, want) {
		t.Errorf("margen %s: error %q does not contain %q", strings.Join(args, " "), msg, want)
	}
}

func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func countDecisions(t *testing.T, st margen.Store, orgID string) int {
	t.Helper()
	n := 0
	f := margen.DecisionFilter{Page: margen.Page{Limit: 500}}
	for {
		ds, err := st.ListDecisions(context.Background(), orgID, f)
		if err != nil {
			t.Fatal(err)
		}
		n += len(ds)
		if len(ds) < f.Limit {
			return n
		}
		f.After = ds[len(ds)-1].ID
	}
}

func TestUsage(t *testing.T) {
	mustFail(t, "no command given")
	mustFail(t, `unknown command "fly"`, "fly")
	mustFail(t, `unknown command "policy fly"`, "policy", "fly")
	mustFail(t, `"org" needs a sub-command: create`, "org")
	_, errOut, err := margenRun(t, "migrate", "--nope")
	if err == nil || !strings.Contains(errOut, "flag provided but not defined: -nope") || !strings.Contains(errOut, "Usage:\n  margen migrate") {
		t.Errorf("unknown flag: err %v, stderr:\n%s", err, errOut)
	}
	mustFail(t, "flag --slug is required", "org", "create", "--name", "x")
	mustFail(t, "missing argument FILE", "policy", "check")

	// -h explains the flags with an example, and succeeds.
	for _, cmd := range commands() {
		args := append(strings.Fields(cmd.name), "-h")
		out := mustRun(t, args...)
		if !strings.Contains(out, "Usage:\n  margen "+cmd.name) || !strings.Contains(out, "Example:") {
			t.Errorf("margen %s -h:\n%s", cmd.name, out)
		}
	}
	if out := mustRun(t, "policy", "explain", "-h"); !strings.Contains(out, "--amount INT") || !strings.Contains(out, "minor units") {
		t.Errorf("policy explain -h does not document --amount in minor units:\n%s", out)
	}
	if out := mustRun(t, "version"); !strings.HasPrefix(out, "margen ") {
		t.Errorf("version: %q", out)
	}
}

func TestMaskDSN(t *testing.T) {
	for in, want := range map[string]string{
		"./margen.db": "./margen.db",
		"postgres://margen:s3cret@db:5432/margen?sslmode=disable": "postgres://margen:xxxxx@db:5432/margen?sslmode=disable",
		"postgresql://db/margen?user=m&password=s3cret":           "postgresql://db/margen?password=xxxxx&user=m",
	} {
		if got := maskDSN(in); got != want {
			t.Errorf("maskDSN(%q) = %q, want %q", in, got, want)
		}
	}
	cfg := config{DB: "postgres://u:s3cret@h/d", Addr: ":1"}
	if strings.Contains(cfg.String(), "s3cret") {
		t.Errorf("config string leaks the password: %s", cfg)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"MARGEN_DB": "/x.db", "MARGEN_ADDR": ":9", "MARGEN_LOG_FORMAT": "JSON", "MARGEN_LOG_LEVEL": "debug"}
	a := &app{getenv: func(k string) string { return env[k] }}
	cfg, err := a.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DB != "/x.db" || cfg.Addr != ":9" || cfg.LogFormat != "json" || cfg.LogLevel.String() != "DEBUG" {
		t.Errorf("config = %+v", cfg)
	}
	// Flags win over the environment.
	fs := a.flags("x", "", "")
	fs.dbFlag(&cfg)
	if _, err := fs.parse([]string{"--db", "/y.db"}, 0); err != nil || cfg.DB != "/y.db" {
		t.Errorf("--db: %v, %q", err, cfg.DB)
	}
	env["MARGEN_LOG_LEVEL"] = "loud"
	if _, err := a.config(); err == nil || !strings.Contains(err.Error(), "MARGEN_LOG_LEVEL") {
		t.Errorf("bad level: %v", err)
	}
	delete(env, "MARGEN_LOG_LEVEL")

	// Rate limits: on by default, set or turned off (0) by the environment.
	if cfg.RateToken != defaultRateToken || cfg.RateAddress != defaultRateAddress {
		t.Errorf("default rates %v, %v", cfg.RateToken, cfg.RateAddress)
	}
	env["MARGEN_RATE_LIMIT_TOKEN"], env["MARGEN_RATE_LIMIT_TOKEN_BURST"] = "0", "7"
	env["MARGEN_RATE_LIMIT_ADDRESS"], env["MARGEN_RATE_LIMIT_ADDRESS_BURST"] = "2.5", "9"
	cfg, err = a.config()
	if err != nil || cfg.RateToken != 0 || cfg.RateTokenBurst != 7 || cfg.RateAddress != 2.5 || cfg.RateAddressBurst != 9 {
		t.Errorf("rate limits from the environment: %+v, %v", cfg, err)
	}
	if tok, addr := cfg.limiters(); tok != nil || addr == nil {
		t.Errorf("limiters: token %v (want none), address %v", tok, addr)
	}
	for k, v := range map[string]string{"MARGEN_RATE_LIMIT_TOKEN": "-1", "MARGEN_RATE_LIMIT_ADDRESS": "fast", "MARGEN_RATE_LIMIT_TOKEN_BURST": "0"} {
		old := env[k]
		env[k] = v
		if _, err := a.config(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
		env[k] = old
	}
}

func TestAdminCommands(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "margen.db")
	good := filepath.Join("testdata", "good.yaml")

	// A command on a database that does not exist yet creates it (and
	// then says what is missing in it).
	mustFail(t, `no organisation with slug "acme"`, "team", "add", "--db", db, "--org", "acme", "--slug", "salon", "--name", "Salón")

	orgArgs := func(kv ...string) []string {
		args := map[string]string{"--slug": "acme", "--name": "La Brasa", "--currency": "cop",
			"--timezone": "America/Bogota", "--owner": "lucia"}
		for i := 0; i+1 < len(kv); i += 2 {
			args[kv[i]] = kv[i+1]
		}
		out := []string{"org", "create", "--db", db}
		for k, v := range args {
			out = append(out, k, v)
		}
		return out
	}
	mustFail(t, "--currency", orgArgs("--currency", "ABC")...)
	mustFail(t, "--timezone", orgArgs("--timezone", "Mars/Olympus")...)
	mustFail(t, "--slug", orgArgs("--slug", "A")...)
	mustFail(t, "--owner", orgArgs("--owner", "Lucía")...)
	mustFail(t, "--language", orgArgs("--language", "fr")...)
	out := mustRun(t, orgArgs("--owner-name", "Lucía Ramírez")...)
	if !regexp.MustCompile(`owner: login lucia, password \S{12,}`).MatchString(out) {
		t.Errorf("org create:\n%s", out)
	}
	mustFail(t, "already exists", orgArgs()...)

	mustRun(t, "team", "add", "--db", db, "--org", "acme", "--slug", "salon", "--name", "Salón")
	mustFail(t, "--org", "team", "add", "--db", db, "--org", "nope", "--slug", "salon", "--name", "Salón")
	mustFail(t, "--team", "member", "add", "--db", db, "--org", "acme", "--login", "camila", "--name", "Camila Rojas",
		"--access", "frontline", "--role", "mesero", "--team", "cocina")
	mustFail(t, "--access", "member", "add", "--db", db, "--org", "acme", "--login", "camila", "--name", "Camila Rojas",
		"--access", "boss", "--role", "mesero")
	out = mustRun(t, "member", "add", "--db", db, "--org", "acme", "--login", "camila", "--name", "Camila Rojas",
		"--access", "frontline", "--role", "mesero", "--team", "salon")
	if !strings.Contains(out, "password: ") {
		t.Errorf("member add:\n%s", out)
	}

	tok := strings.TrimSpace(mustRun(t, "token", "create", "--db", db, "--org", "acme", "--member", "camila", "--name", "tablet"))
	if !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("token create printed %q", tok)
	}
	st := openDB(t, db)
	org, err := st.OrgBySlug(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if org.Currency != "COP" || org.Language != "es" {
		t.Errorf("org = %+v", org)
	}
	stored, err := st.TokenByHash(ctx, auth.HashToken(tok))
	if err != nil || stored.Name != "tablet" {
		t.Errorf("stored token: %+v, %v", stored, err)
	}

	// policy check: a good file, and a bad one reported like a compiler.
	if out := mustRun(t, "policy", "check", good); out != good+": ok (2 actions, 2 roles, 2 grants, 1 forbid rule)\n" {
		t.Errorf("policy check good: %q", out)
	}
	bad := filepath.Join("testdata", "bad.yaml")
	_, _, err = margenRun(t, "policy", "check", bad)
	var pe *policyErrors
	if !errors.As(err, &pe) {
		t.Fatalf("policy check bad: %v", err)
	}
	want := bad + ":13:11: grants[0].role: unknown role \"camarero\"\n" +
		bad + ":15:17: grants[0].max_amount: must be a whole number of minor units (cents), got a decimal number"
	if pe.Error() != want {
		t.Errorf("policy check bad:\n%s\nwant:\n%s", pe.Error(), want)
	}

	// A hostile document (100 KB of brackets nested 50,000 deep, which
	// made the parser exhaust memory) and a deeply nested one are refused
	// for the limit they break, with its position.
	for _, tc := range []struct{ src, want string }{
		{"currency: " + strings.Repeat("[", 4000) + strings.Repeat("]", 4000) + "\n", ":1:34: policy is nested too deeply (at most 24 levels)"},
		{"currency: " + strings.Repeat("[", 50000) + strings.Repeat("]", 50000) + "\n", ":1:1: policy has too many YAML elements (at most 50000)"},
		{"currency: COP\n#" + strings.Repeat("x", policy.MaxPolicySize) + "\n", ":1:1: policy is too large (at most 1048576 bytes)"},
	} {
		hostile := filepath.Join(t.TempDir(), "hostile.yaml")
		if err := os.WriteFile(hostile, []byte(tc.src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err = margenRun(t, "policy", "check", hostile)
		if !errors.As(err, &pe) || pe.Error() != hostile+tc.want {
			t.Fatalf("policy check hostile: %v, want %s%s", err, hostile, tc.want)
		}
	}

	// publish refuses a policy without the role of an active member.
	mustFail(t, "camila (role mesero)", "policy", "publish", "--db", db, "--org", "acme", filepath.Join("testdata", "norole.yaml"))
	out = mustRun(t, "policy", "publish", "--db", db, "--org", "acme", good)
	if !strings.Contains(out, "as policy version 1 of acme") {
		t.Errorf("publish: %q", out)
	}

	// explain: the verdict and why, recording nothing.
	out = mustRun(t, "policy", "explain", "--db", db, "--org", "acme", "--member", "camila", "--action", "cortesia",
		"--amount", "800000", "--customer", "mesa-12", "--context", `{"order_total": 33000000}`)
	for _, s := range []string{"outcome:  allowed", "canasta_de_pan (policy version 1", "mesero_dia", "50.000,00 COP", "8.000,00 COP", "42.000,00 COP", "nothing was recorded"} {
		if !strings.Contains(out, s) {
			t.Errorf("explain output lacks %q:\n%s", s, out)
		}
	}
	out = mustRun(t, "policy", "explain", "--db", db, "--org", "acme", "--member", "camila", "--action", "cortesia",
		"--amount", "800000", "--context", `{"order_total": 33000000, "item": "licor"}`)
	if !strings.Contains(out, "outcome:  denied") || !strings.Contains(out, "No se regalan bebidas alcohólicas") {
		t.Errorf("explain forbidden:\n%s", out)
	}
	mustFail(t, "--action: the policy has no action", "policy", "explain", "--db", db, "--org", "acme", "--member", "camila",
		"--action", "vuelo", "--amount", "1")
	mustFail(t, "--context", "policy", "explain", "--db", db, "--org", "acme", "--member", "camila",
		"--action", "cortesia", "--context", "[1]")
	if n := countDecisions(t, st, org.ID); n != 0 {
		t.Errorf("explain recorded %d decisions", n)
	}

	out = mustRun(t, "ledger", "check", "--db", db, "--org", "acme")
	if !strings.Contains(out, "ledger: 0 accounts, 0 entries: ok") || !strings.Contains(out, "chain intact") {
		t.Errorf("ledger check:\n%s", out)
	}
}

// syncBuffer is a buffer the server goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var tokenLine = regexp.MustCompile(`camila \(mesero, salón\):\s+(mgn_\S+)`)

func TestDemoAndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 90 days of history")
	}
	db := filepath.Join(t.TempDir(), "demo.db")

	first := mustRun(t, "demo", "--db", db)
	if !regexp.MustCompile(`Sign in: login admin, password \S{12,}`).MatchString(first) || !tokenLine.MatchString(first) {
		t.Fatalf("demo, first run:\n%s", first)
	}
	st := openDB(t, db)
	org, err := st.OrgBySlug(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	n := countDecisions(t, st, org.ID)
	if n < 1000 {
		t.Errorf("demo made %d decisions", n)
	}

	second := mustRun(t, "demo", "--db", db)
	if !strings.Contains(second, "already loaded") || strings.Contains(second, "Sign in: login admin, password") {
		t.Errorf("demo, second run:\n%s", second)
	}
	if n2 := countDecisions(t, st, org.ID); n2 != n {
		t.Errorf("second demo run: %d decisions, want %d", n2, n)
	}
	token := tokenLine.FindStringSubmatch(second)[1]

	out := mustRun(t, "ledger", "check", "--db", db, "--org", "demo")
	if !strings.Contains(out, "entries: ok") || !strings.Contains(out, "chain intact") {
		t.Errorf("ledger check on the demo:\n%s", out)
	}

	// serve on a free port, over real HTTP.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--db", db, "--addr", "127.0.0.1:0"}, strings.NewReader(""), &stdout, &stderr)
	}()
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "margen listening on "); ok {
				base = addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.HasSuffix(base, ":0") {
		t.Fatalf("serve printed the requested address, not the real one: %s", base)
	}

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: %s", resp.Status)
	}

	body := `{"action":"cortesia","amount":800000,"customer":{"ref":"mesa-12"},` +
		`"reason":"Segunda canasta de pan para mesa de 6","context":{"order_total":33000000,"diners":6}}`
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/decisions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "test-bread-basket")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/decisions: %s\n%s", resp.Status, raw)
	}
	var d margen.Decision
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || d.Outcome != margen.OutcomeAllowed || d.Explanation.Message == "" {
		t.Errorf("decision: %s", raw)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if n3 := countDecisions(t, st, org.ID); n3 != n+1 {
		t.Errorf("after one decision over HTTP: %d decisions, want %d", n3, n+1)
	}
}
