package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/store/storetest"
)

// withConfig serves e's database through a handler built with cfg changed
// by fn (the tokens stay valid: they live in the database).
func (e *env) withConfig(fn func(*httpapi.Config)) {
	e.t.Helper()
	cat, err := i18n.New()
	if err != nil {
		e.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := decision.New(e.db, decision.Options{Logger: log})
	e.t.Cleanup(eng.Close)
	cfg := httpapi.Config{Store: e.db, Engine: eng, Catalog: cat, Logger: log, Version: "test"}
	fn(&cfg)
	h, err := httpapi.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	e.t.Cleanup(e.srv.Close)
}

func TestReadyz(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		var workersDown atomic.Bool
		e.withConfig(func(c *httpapi.Config) {
			c.Ready = []httpapi.ReadyCheck{
				{Name: "migrations", Check: e.db.SchemaCurrent},
				{Name: "workers", Check: func(context.Context) error {
					if workersDown.Load() {
						return errors.New("sla stopped")
					}
					return nil
				}},
			}
		})
		type readiness struct {
			Status string
			Checks map[string]string
			Failed []string
		}
		var r readiness
		e.do("GET", "/readyz", "", "").want(200).decode(&r)
		if r.Status != "ready" || r.Checks["database"] != "ok" || r.Checks["migrations"] != "ok" || r.Checks["workers"] != "ok" {
			t.Fatalf("ready: %+v", r)
		}
		workersDown.Store(true)
		r = readiness{}
		e.do("GET", "/readyz", "", "").want(503).decode(&r)
		if r.Status != "unavailable" || !slices.Equal(r.Failed, []string{"workers"}) || r.Checks["database"] != "ok" {
			t.Fatalf("workers down: %+v", r)
		}
		workersDown.Store(false)
		// A database that no longer answers.
		e.db.Close()
		r = readiness{}
		e.do("GET", "/readyz", "", "").want(503).decode(&r)
		if !slices.Contains(r.Failed, "database") {
			t.Fatalf("database closed: %+v", r)
		}
		// Liveness does not depend on the database.
		e.do("GET", "/healthz", "", "").want(200)
	})
}

func TestLastBackup(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *env) {
		var st backup.Status
		e.do("GET", "/api/v1/backups/last", "mario", "").want(200).decode(&st)
		if st.Configured {
			t.Fatalf("backups reported configured without a scheduler: %+v", st)
		}
		at := time.Date(2026, 12, 2, 3, 15, 0, 0, time.UTC)
		e.withConfig(func(c *httpapi.Config) {
			c.Backups = func() backup.Status {
				return backup.Status{Configured: true, OK: true, Keep: 14, LastAt: &at, LastSuccessAt: &at,
					File: "margen-20261202T031500Z.db", Bytes: 4096, Failures: 2}
			}
		})
		for _, who := range []string{"ana", "sara"} {
			e.do("GET", "/api/v1/backups/last", who, "").want(403)
		}
		e.do("GET", "/api/v1/backups/last", "", "").want(401)
		for _, who := range []string{"olga", "mario"} {
			st = backup.Status{}
			e.do("GET", "/api/v1/backups/last", who, "").want(200).decode(&st)
			if !st.Configured || !st.OK || st.File != "margen-20261202T031500Z.db" || st.Failures != 2 || !st.LastSuccessAt.Equal(at) {
				t.Fatalf("%s: %+v", who, st)
			}
		}
	})
}

// TestAccessLogOneLinePerRequest: one line per request, carrying the request's id (the
// client's X-Request-Id when sane), its status and who made it, never the
// token.
func TestAccessLogOneLinePerRequest(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			var logs syncBuffer
			e := setupLog(t, eng.Open(t), slog.New(slog.NewJSONHandler(&logs, nil)))
			before := strings.Count(logs.String(), `"msg":"http request"`)
			res := e.do("GET", "/api/v1/me", "ana", "", "X-Request-Id", "req-1234")
			res.want(200)
			e.do("GET", "/api/v1/nope", "", "", "X-Request-Id", "req-5678").want(404)
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" {
					lines = append(lines, m)
				}
			}
			if len(lines) != before+2 {
				t.Fatalf("%d access log lines for 2 requests:\n%s", len(lines)-before, logs.String())
			}
			me, nope := lines[before], lines[before+1]
			if me["request_id"] != "req-1234" || me["status"] != float64(200) || me["path"] != "/api/v1/me" ||
				me["member"] != e.member["ana"].ID || me["remote"] == "" {
				t.Errorf("access line: %v", me)
			}
			if nope["request_id"] != "req-5678" || nope["status"] != float64(404) {
				t.Errorf("access line: %v", nope)
			}
			if strings.Contains(logs.String(), e.tok["ana"]) {
				t.Error("the token was logged")
			}
		})
	}
}
