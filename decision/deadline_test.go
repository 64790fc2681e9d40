package decision_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/store/storetest"
)

// TestHungDatabaseAnswersBusy: while another connection holds the lock a
// decision batch needs (SQLite's write lock, the organisation's row on
// PostgreSQL), every caller is refused with EUNAVAILABLE "error.busy" once
// its write deadline passes, nothing is recorded, and the engine writes
// again as soon as the lock is released.
func TestHungDatabaseAnswersBusy(t *testing.T) {
	for _, e := range storetest.DSNs() {
		t.Run(e.Name, func(t *testing.T) {
			dsn := e.New(t)
			st := storetest.Open(t, dsn)
			f := setupWith(t, st, testPolicy, decision.Options{WriteTimeout: 300 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx := context.Background()
			if _, err := f.eng.Decide(ctx, f.req("courtesy_gift", 10, "before")); err != nil {
				t.Fatal(err)
			}

			release := storetest.HoldWriteLock(t, dsn, f.org.ID)
			const callers = 20
			errs := make(chan error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					_, err := f.eng.Decide(ctx, f.req("courtesy_gift", 10, fmt.Sprintf("hung-%d", i)))
					errs <- err
				})
			}
			// Generous: the write timeout is 300 ms; without one the
			// callers wait for the lock (for ever on PostgreSQL, for
			// SQLite's busy timeout times the retries on SQLite).
			answered := make(chan struct{})
			go func() { wg.Wait(); close(answered) }()
			select {
			case <-answered:
			case <-time.After(20 * time.Second):
				release()
				<-answered
				t.Fatal("callers were not answered while the database was locked")
			}
			close(errs)
			for err := range errs {
				var me *margen.Error
				if !margen.IsCode(err, margen.EUNAVAILABLE) || !errorAs(err, &me) || me.Key != "error.busy" {
					t.Errorf("decision while locked: %v, want unavailable/error.busy", err)
				}
			}

			release()
			res, err := f.eng.Decide(ctx, f.req("courtesy_gift", 10, "after"))
			if err != nil {
				t.Fatalf("decision after the lock was released: %v", err)
			}
			if res.Decision.Outcome != margen.OutcomeAllowed {
				t.Fatalf("outcome %s", res.Decision.Outcome)
			}
			ds, err := f.st.ListDecisions(ctx, f.org.ID, margen.DecisionFilter{Page: margen.Page{Limit: 100}})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 2 {
				t.Fatalf("%d decisions recorded, want 2 (the refused ones must not be)", len(ds))
			}
			checkLedger(t, f)
		})
	}
}
