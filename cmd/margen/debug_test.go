package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeDebugAddr: --debug-addr serves the profiler and the metrics on
// a listener of its own; the public listener has no profiler; addresses
// that could face the Internet are refused.
func TestServeDebugAddr(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	mustRun(t, "migrate", "--db", db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0"},
			strings.NewReader(""), &stdout, &stderr)
	}()
	base := waitListening(t, &stdout, &stderr, done)
	var debug string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if addr, ok := strings.CutPrefix(line, "margen debug listening on "); ok {
			debug = addr
		}
	}
	if debug == "" {
		t.Fatalf("no debug listener announced:\n%s", stdout.String())
	}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(debug + "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("debug /debug/pprof/: %d %.200s", code, body)
	}
	if code, body := get(debug + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("debug goroutine profile: %d %.200s", code, body)
	}
	if code, body := get(debug + "/metrics"); code != 200 || !strings.Contains(body, "margen_decisions_total") {
		t.Errorf("debug /metrics: %d %.200s", code, body)
	}
	if code, _ := get(base + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("public /debug/pprof/: %d, want 404", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}

	for _, addr := range []string{"0.0.0.0:6060", ":6060", "8.8.8.8:6060", "localhost:6060", "nonsense"} {
		_, _, err := margenRun(t, "serve", "--db", db, "--addr", "127.0.0.1:0", "--debug-addr", addr)
		if err == nil || !strings.Contains(err.Error(), "--debug-addr") {
			t.Errorf("--debug-addr %s: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "10.1.2.3:6060", "192.168.0.9:0"} {
		if err := checkDebugAddr(addr); err != nil {
			t.Errorf("checkDebugAddr(%s): %v", addr, err)
		}
	}
}
