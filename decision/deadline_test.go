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
// PostgreSQL), every caller is refused with EBUSY "error.busy" once
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
				if !margen.IsCode(err, margen.EBUSY) || !errorAs(err, &me) || me.Key != "error.busy" {
					t.Errorf("decision while locked: %v, want busy/error.busy", err)
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

// slowStore makes every decision of a batch cost a millisecond more to
// write, and records the batch sizes.
type slowStore struct {
	margen.Store
	mu    sync.Mutex
	sizes []int
}

func (s *slowStore) CommitBatch(ctx context.Context, q margen.BatchQuery, decide func(*margen.BatchState) (*margen.BatchWrite, error)) (func() error, error) {
	return s.Store.CommitBatch(ctx, q, func(st *margen.BatchState) (*margen.BatchWrite, error) {
		w, err := decide(st)
		if w != nil {
			s.mu.Lock()
			s.sizes = append(s.sizes, len(w.Decisions))
			s.mu.Unlock()
			time.Sleep(time.Duration(len(w.Decisions)) * time.Millisecond)
		}
		return w, err
	})
}

// TestBatchBoundedByTime: when decisions are slow to write, the writer
// takes fewer of them per batch (about MaxBatchTime's worth), not
// MaxBatch, so a decision arriving meanwhile waits less.
func TestBatchBoundedByTime(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			st := &slowStore{Store: e.open(t)}
			f := setupWith(t, st, testPolicy, decision.Options{MaxBatchTime: 10 * time.Millisecond})
			var wg sync.WaitGroup
			for i := range 300 {
				wg.Go(func() {
					if _, err := f.eng.Decide(context.Background(), f.req("courtesy_gift", 1, fmt.Sprintf("c%d", i))); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			st.mu.Lock()
			defer st.mu.Unlock()
			// Once a batch of 8 or more has been timed (>= 1 ms per
			// decision), no batch may take more than 10 ms / 1 ms.
			timed, big := false, 0
			for _, n := range st.sizes {
				if timed && n > 10 {
					big++
				}
				if n >= 8 {
					timed = true
				}
			}
			if !timed || big > 0 {
				t.Errorf("batch sizes %v: want at most 10 after the first timed batch", st.sizes)
			}
		})
	}
}

// TestDecideAfterClose: a decision asked of a closed engine is refused at
// once ("shutting down"), never queued for a writer that has stopped.
func TestDecideAfterClose(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			f := setup(t, e.open, testPolicy)
			f.eng.Close()
			for range 20 {
				done := make(chan error, 1)
				go func() {
					_, err := f.eng.Decide(context.Background(), f.req("courtesy_gift", 1, "closed"))
					done <- err
				}()
				select {
				case err := <-done:
					var me *margen.Error
					if !errorAs(err, &me) || me.Key != "error.shutting_down" {
						t.Fatalf("decide after close: %v", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("decide after close never returned")
				}
			}
		})
	}
}
