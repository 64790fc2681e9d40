package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

func TestStore(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, e.Open)
		})
	}
}

// TestControl runs the approvals and webhooks conformance suite on both
// engines.
func TestControl(t *testing.T) {
	for name, dsn := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.RunControl(t, dsn)
		})
	}
}

// TestJobs runs the job queue's conformance suite on both engines.
func TestJobs(t *testing.T) {
	for name, dsn := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storetest.RunJobs(t, dsn)
		})
	}
}

// dsns returns a fresh database name per engine.
func dsns(t *testing.T) map[string]func(*testing.T) string {
	return map[string]func(*testing.T) string{
		"sqlite":   func(t *testing.T) string { return storetest.SQLitePath(t) },
		"postgres": func(t *testing.T) string { return storetest.PostgresURL(t) },
	}
}

// TestOpenRefusesStaleSchema: Open creates a new database's schema but
// leaves upgrading an existing one to Migrate.
func TestOpenRefusesStaleSchema(t *testing.T) {
	for name, dsn := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := dsn(t)
			// A new, empty database gets its schema without Migrate.
			db, err := store.Open(ctx, url, store.Options{})
			if err != nil {
				t.Fatalf("Open without migrate on an empty database: %v", err)
			}
			if db.Engine() != name {
				t.Fatalf("Engine() = %q, want %q", db.Engine(), name)
			}
			if err := db.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if err := store.Migrate(ctx, url); err != nil { // idempotent
				t.Fatal(err)
			}
			// An existing database one migration behind is refused: only
			// migrate (or serve) upgrades it.
			if _, err := db.SQL().ExecContext(ctx, "DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)"); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = store.Open(ctx, url, store.Options{})
			if err == nil || !strings.Contains(err.Error(), "margen migrate") {
				t.Fatalf("Open without migrate on a stale database = %v, want a hint to run margen migrate", err)
			}
		})
	}
}

// TestTwoProcesses opens the same database twice, as two margen serve
// processes would, and posts to one account from both at once.
func TestTwoProcesses(t *testing.T) {
	for name, dsn := range dsns(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := dsn(t)
			if err := store.Migrate(ctx, url); err != nil {
				t.Fatal(err)
			}
			var dbs [2]*store.DB
			for i := range dbs {
				db, err := store.Open(ctx, url, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				dbs[i] = db
			}
			org := &margen.Org{Slug: "two", Name: "Two", Currency: "EUR", Timezone: "UTC", Language: "es"}
			owner := &margen.Member{Login: "o", Name: "O", Role: "r"}
			if err := dbs[0].CreateOrg(ctx, org, owner, ""); err != nil {
				t.Fatal(err)
			}
			const perProc, batch = 40, 5
			var wg sync.WaitGroup
			errs := make(chan error, 2*perProc)
			for p, db := range dbs {
				for i := range perProc {
					wg.Go(func() {
						d := &storetest.Decider{Limit: 1 << 40, At: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)}
						for j := range batch {
							d.Reqs = append(d.Reqs, storetest.Request{OrgID: org.ID, MemberID: owner.ID,
								CustomerRef: fmt.Sprint("c", (i+j)%3), Amount: 1, IdemKey: fmt.Sprint(p, "-", i, "-", j)})
						}
						for attempt := 0; ; attempt++ {
							err := db.DecideBatch(ctx, d.Query(), d.Decide)
							if err == nil {
								return
							}
							if !store.IsRetryable(err) || attempt == 20 {
								errs <- err
								return
							}
							time.Sleep(time.Duration(attempt+1) * time.Millisecond)
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			accts, err := dbs[1].ListBudgets(ctx, org.ID, margen.BudgetFilter{BudgetID: "daily"})
			if err != nil || len(accts) != 1 || accts[0].Posted != 2*perProc*batch {
				t.Fatalf("daily = %+v, %v; want posted %d", accts, err, 2*perProc*batch)
			}
			rep, err := dbs[1].CheckLedger(ctx, org.ID)
			if err != nil || !rep.OK() {
				t.Fatalf("CheckLedger = %+v, %v", rep, err)
			}
			if broken, _, err := dbs[0].VerifyAudit(ctx, org.ID); err != nil || broken != 0 {
				t.Fatalf("VerifyAudit = %d, %v", broken, err)
			}
		})
	}
}

func TestIsRetryable(t *testing.T) {
	if store.IsRetryable(nil) || store.IsRetryable(margen.NotFound("x")) {
		t.Fatal("IsRetryable of a non-transient error")
	}
}

// BenchmarkDecideBatch runs batches of 64 decisions (the engine's typical
// group commit) and, for comparison, of 1 (one commit per decision).
func BenchmarkDecideBatch(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			for _, size := range []int{64, 1} {
				b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
					storetest.BenchDecideBatch(b, e.Open, size)
				})
			}
		})
	}
}
