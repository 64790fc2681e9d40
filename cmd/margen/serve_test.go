package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
)

func TestServeConfig(t *testing.T) {
	env := map[string]string{"MARGEN_SLA_EVERY": "250ms", "MARGEN_METRICS_PUBLIC": "true", "MARGEN_WRITE_TIMEOUT": "750ms"}
	a := &app{getenv: func(k string) string { return env[k] }}
	cfg, err := a.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SLAEvery != 250*time.Millisecond || !cfg.MetricsPublic || cfg.WriteTimeout != 750*time.Millisecond {
		t.Errorf("config = %+v", cfg)
	}
	if def, _ := (&app{getenv: func(string) string { return "" }}).config(); def.SLAEvery != time.Second || def.MetricsPublic {
		t.Errorf("defaults = %+v", def)
	}
	for k, v := range map[string]string{"MARGEN_SLA_EVERY": "soon", "MARGEN_METRICS_PUBLIC": "maybe", "MARGEN_WRITE_TIMEOUT": "0s"} {
		bad := map[string]string{k: v}
		a := &app{getenv: func(k string) string { return bad[k] }}
		if _, err := a.config(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	bad := map[string]string{"MARGEN_SLA_EVERY": "-1s"}
	if _, err := (&app{getenv: func(k string) string { return bad[k] }}).config(); err == nil {
		t.Error("a negative MARGEN_SLA_EVERY was accepted")
	}
	_, _, err = margenRun(t, "serve", "--sla-every", "0s", "--db", filepath.Join(t.TempDir(), "x.db"))
	if err == nil || !strings.Contains(err.Error(), "--sla-every") {
		t.Errorf("serve --sla-every 0s: %v", err)
	}
}

// TestServeWiring: serve exposes /metrics, runs the event stream and
// ends it when asked to stop, without waiting for the client to leave.
func TestServeWiring(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	mustRun(t, "migrate", "--db", db)
	mustRun(t, "org", "create", "--db", db, "--slug", "wiring", "--name", "Wiring", "--currency", "EUR",
		"--timezone", "Europe/Madrid", "--owner", "boss")
	token := tokenRE(t, mustRun(t, "token", "create", "--db", db, "--org", "wiring", "--member", "boss"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--sla-every", "100ms"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	base := waitListening(t, &stdout, &stderr, done)

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"margen_decisions_total", "margen_pending_approvals 0", "margen_job_queue_depth 0",
		"margen_webhook_failures_total 0", "go_goroutines"} {
		if resp.StatusCode != 200 || !strings.Contains(string(b), name) {
			t.Errorf("GET /metrics: %d, lacks %s", resp.StatusCode, name)
		}
	}

	req, _ := http.NewRequest("GET", base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/events: %s", resp.Status)
	}
	ended := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
		close(ended)
	}()

	began := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not shut down with a stream open")
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream was not ended")
	}
	// The client never leaves: had serve waited for it, the guard above
	// would have failed.
	t.Logf("stopped %s after the cancel", time.Since(began))
}

func tokenRE(t *testing.T, out string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "mgn_") {
			return f
		}
	}
	t.Fatalf("no token in %q", out)
	return ""
}

// waitListening waits for serve's "margen listening on" line.
func waitListening(t *testing.T, stdout, stderr *syncBuffer, done chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if addr, ok := strings.CutPrefix(line, "margen listening on "); ok {
				return addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeLimitsConfig(t *testing.T) {
	env := map[string]string{"MARGEN_DB_MAX_CONNS": "12", "MARGEN_DB_CONN_WAIT": "750ms",
		"MARGEN_MAX_STREAMS_PER_MEMBER": "3", "MARGEN_MAX_STREAMS_PER_ORG": "40"}
	cfg, err := (&app{getenv: func(k string) string { return env[k] }}).config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DBMaxConns != 12 || cfg.DBConnWait != 750*time.Millisecond || cfg.StreamsPerMember != 3 || cfg.StreamsPerOrg != 40 {
		t.Errorf("config = %+v", cfg)
	}
	def, _ := (&app{getenv: func(string) string { return "" }}).config()
	if def.DBMaxConns != 32 || def.DBConnWait != 5*time.Second || def.StreamsPerMember != 8 || def.StreamsPerOrg != 500 {
		t.Errorf("defaults = %+v", def)
	}
	for k, v := range map[string]string{"MARGEN_DB_MAX_CONNS": "0", "MARGEN_DB_CONN_WAIT": "soon",
		"MARGEN_MAX_STREAMS_PER_MEMBER": "-1", "MARGEN_MAX_STREAMS_PER_ORG": "many"} {
		bad := map[string]string{k: v}
		if _, err := (&app{getenv: func(k string) string { return bad[k] }}).config(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	_, _, err = margenRun(t, "serve", "--db-max-conns", "0", "--db", filepath.Join(t.TempDir(), "x.db"))
	if err == nil || !strings.Contains(err.Error(), "--db-max-conns") {
		t.Errorf("serve --db-max-conns 0: %v", err)
	}
}

// TestCaseThresholdsConfig: the follow-up case thresholds come from the
// environment or flags, within their scales.
func TestCaseThresholdsConfig(t *testing.T) {
	env := map[string]string{"MARGEN_CASE_CSAT_MAX": "3", "MARGEN_CASE_NPS_MAX": "-1"}
	cfg, err := (&app{getenv: func(k string) string { return env[k] }}).config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CaseCSATMax != 3 || cfg.CaseNPSMax != -1 {
		t.Errorf("thresholds = %d, %d", cfg.CaseCSATMax, cfg.CaseNPSMax)
	}
	def, _ := (&app{getenv: func(string) string { return "" }}).config()
	if def.CaseCSATMax != margen.DefaultCaseCSAT || def.CaseNPSMax != margen.DefaultCaseNPS {
		t.Errorf("defaults = %d, %d", def.CaseCSATMax, def.CaseNPSMax)
	}
	for k, v := range map[string]string{"MARGEN_CASE_CSAT_MAX": "6", "MARGEN_CASE_NPS_MAX": "0"} {
		bad := map[string]string{k: v}
		if _, err := (&app{getenv: func(k string) string { return bad[k] }}).config(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	_, _, err = margenRun(t, "serve", "--case-csat-max", "9", "--db", filepath.Join(t.TempDir(), "x.db"))
	if err == nil || !strings.Contains(err.Error(), "--case-csat-max") {
		t.Errorf("serve --case-csat-max 9: %v", err)
	}
}

// TestServeGCPace: serve runs the collector at serveGCPercent unless GOGC
// is set, which then decides alone.
func TestServeGCPace(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)
	if got := setGCPace(func(string) string { return "" }); got != serveGCPercent {
		t.Errorf("setGCPace without GOGC = %d, want %d", got, serveGCPercent)
	}
	if now := debug.SetGCPercent(100); now != serveGCPercent {
		t.Errorf("collector pace without GOGC = %d, want %d", now, serveGCPercent)
	}
	env := map[string]string{"GOGC": "150"}
	if got := setGCPace(func(k string) string { return env[k] }); got != -1 {
		t.Errorf("setGCPace with GOGC=150 = %d, want -1 (left to GOGC)", got)
	}
	if now := debug.SetGCPercent(100); now != 100 {
		t.Errorf("collector pace with GOGC set = %d, want it untouched (100)", now)
	}
}

// TestLedgerCheckAtDefaultPace: while serve runs the collector at its own
// pace, a ledger check runs at Go's default one, and the pace is set back
// after it; with GOGC set, the job is left alone.
func TestLedgerCheckAtDefaultPace(t *testing.T) {
	prev := debug.SetGCPercent(serveGCPercent)
	defer debug.SetGCPercent(prev)
	during := 0
	k := jobs.Kind{Handler: func(context.Context, *jobs.Attempt) error {
		during = debug.SetGCPercent(-1)
		debug.SetGCPercent(during)
		return nil
	}}
	if err := atDefaultPace(serveGCPercent, k).Handler(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if during != 100 {
		t.Errorf("pace during the check = %d, want 100", during)
	}
	if now := debug.SetGCPercent(serveGCPercent); now != serveGCPercent {
		t.Errorf("pace after the check = %d, want %d", now, serveGCPercent)
	}
	if err := atDefaultPace(-1, k).Handler(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if during != serveGCPercent {
		t.Errorf("pace during the check with GOGC set = %d, want it untouched (%d)", during, serveGCPercent)
	}
}
