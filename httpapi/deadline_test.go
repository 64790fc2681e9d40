package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/store/storetest"
)

// TestDecisionBusyWhileDatabaseLocked: while another connection holds the
// lock decisions need, POST /api/v1/decisions answers 503 with a "busy"
// problem and Retry-After (before a generous deadline, instead of waiting
// for the lock) and records nothing; once the lock is released the next
// decision is recorded.
func TestDecisionBusyWhileDatabaseLocked(t *testing.T) {
	for _, eng := range storetest.DSNs() {
		t.Run(eng.Name, func(t *testing.T) {
			dsn := eng.New(t)
			e := setup(t, storetest.Open(t, dsn))
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			cat, err := i18n.New()
			if err != nil {
				t.Fatal(err)
			}
			// The same database served by an engine with a short write
			// deadline.
			engine := decision.New(e.db, decision.Options{Logger: log, WriteTimeout: 300 * time.Millisecond})
			t.Cleanup(engine.Close)
			h, err := httpapi.New(httpapi.Config{Store: e.db, Engine: engine, Catalog: cat, Logger: log, Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			e.srv = httptest.NewServer(h)
			t.Cleanup(e.srv.Close)
			// Generous: without a deadline the request waits for the lock
			// (for ever on PostgreSQL), and the client gives up first.
			e.srv.Client().Timeout = 20 * time.Second

			before := e.countDecisions(e.orgA.ID)
			release := storetest.HoldWriteLock(t, dsn, e.orgA.ID)
			res := e.do("POST", "/api/v1/decisions", "ana", gift(100, "locked"), "Accept-Language", "en")
			res.want(http.StatusServiceUnavailable)
			if p := res.problem(); p.Code != "busy" || p.Key != "error.busy" || p.Type != "urn:margen:problem:busy" {
				t.Errorf("problem %+v, want busy/error.busy", p)
			}
			if ra := res.header.Get("Retry-After"); ra == "" {
				t.Error("no Retry-After on the 503")
			}
			release()

			if _, res := e.decide("ana", gift(100, "unlocked")); res.status != http.StatusCreated {
				t.Fatalf("after the lock: %d %s", res.status, res.body)
			}
			if n := e.countDecisions(e.orgA.ID); n != before+1 {
				t.Fatalf("%d decisions recorded, want %d: the refused one must not be", n-before, 1)
			}
		})
	}
}
