package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/pressly/goose/v3"
)

// TestMigrateJobs: migration 00004 moves the pending deliveries of an
// existing database onto the job queue (with their attempts, due time and
// lease) and turns its idempotency records into opaque answers that expire.
func TestMigrateJobs(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *DB{EngineSQLite: oldSQLite, EnginePostgres: oldPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			p := upTo(t, db, 2)
			at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
			lease := at.Add(time.Minute)
			ts := db.d.ts
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{"INSERT INTO orgs (id, slug, name, currency, timezone, language, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
					[]any{"org_1", "o", "O", "EUR", "UTC", "es", ts(at)}},
				{"INSERT INTO webhooks (org_id, id, url, events, secret, active, after_seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
					[]any{"org_1", "whk_1", "https://example.com/h", `["*"]`, "whsec_x", true, 0, ts(at)}},
				{`INSERT INTO deliveries (org_id, id, webhook_id, event_type, audit_seq, payload, status, attempts, next_at, lease_until, created_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					[]any{"org_1", "msg_pending", "whk_1", "decision.made", 1, `{}`, "pending", 3, ts(at), ts(lease), ts(at)}},
				{`INSERT INTO deliveries (org_id, id, webhook_id, event_type, audit_seq, payload, status, attempts, next_at, created_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					[]any{"org_1", "msg_done", "whk_1", "decision.made", 2, `{}`, "delivered", 1, ts(at), ts(at)}},
				{"INSERT INTO idempotency (org_id, member_id, key, request_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
					[]any{"org_1", "mem_1", "k", "h", 201, []byte(`{"id":"dec_1"}`), ts(at)}},
			} {
				if _, err := db.write.ExecContext(ctx, db.d.rebind(q.sql), q.args...); err != nil {
					t.Fatalf("%s: %v", q.sql, err)
				}
			}
			if _, err := p.Up(ctx); err != nil {
				t.Fatal(err)
			}
			j, err := db.GetJob(ctx, "job_msg_pending")
			if err != nil {
				t.Fatal(err)
			}
			if j.Kind != margen.JobWebhookDelivery || j.OrgID != "org_1" || j.UniqueKey != "msg_pending" ||
				j.Status != margen.JobPending || j.Attempts != 3 || !j.RunAt.Equal(at) || !j.LeaseUntil.Equal(lease) ||
				string(j.Payload) != `{"delivery":"msg_pending"}` {
				t.Fatalf("migrated job = %+v (payload %s)", j, j.Payload)
			}
			if n, err := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour)); err != nil || n != 1 {
				t.Fatalf("PendingJobs = %d, %v (only the pending delivery moves)", n, err)
			}
			// The lease still holds; then the job is claimed like any other.
			claim := func(now time.Time) []margen.Job {
				js, err := db.ClaimJobs(ctx, margen.JobClaim{Kinds: []string{margen.JobWebhookDelivery}, Owner: "w", Now: now, Lease: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				return js
			}
			if js := claim(lease.Add(-time.Second)); len(js) != 0 {
				t.Fatalf("claimed under the old lease: %+v", js)
			}
			if js := claim(lease); len(js) != 1 || js[0].Attempts != 4 {
				t.Fatalf("claim after the lease = %+v", js)
			}
			rec, err := db.Idempotency(ctx, "org_1", "mem_1", "k")
			if err != nil || string(rec.Response) != `{"status":201,"body":{"id":"dec_1"}}` || rec.RequestHash != "h" ||
				!rec.ExpiresAt.Equal(at.Add(24*time.Hour)) {
				t.Fatalf("migrated record = %+v (%s), %v", rec, rec.Response, err)
			}
			// The migration goes down and up again.
			if _, err := p.DownTo(ctx, 2); err != nil {
				t.Fatalf("down: %v", err)
			}
			if _, err := p.Up(ctx); err != nil {
				t.Fatalf("up again: %v", err)
			}
		})
	}
}

// oldSQLite opens an empty SQLite database without migrating it.
func oldSQLite(t *testing.T) *DB {
	db, err := openSQLite(context.Background(), filepath.Join(t.TempDir(), "old.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.connWait = DefaultConnWait
	db.log = slog.New(slog.DiscardHandler)
	t.Cleanup(func() { db.Close() })
	return db
}

// upTo migrates db, opened by oldSQLite or oldPostgres, to version v and
// returns its migrations, to go further up or down.
func upTo(t *testing.T, db *DB, v int64) *goose.Provider {
	t.Helper()
	ctx := context.Background()
	p, err := db.provider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, v); err != nil {
		t.Fatal(err)
	}
	return p
}

// oldPostgres opens an empty schema of the MARGEN_TEST_POSTGRES server
// without migrating it (skipped without the variable).
func oldPostgres(t *testing.T) *DB {
	base := os.Getenv("MARGEN_TEST_POSTGRES")
	if base == "" {
		t.Skip("set MARGEN_TEST_POSTGRES=postgres://... to run the PostgreSQL suite")
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	schema := "margen_test_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := openPostgres(context.Background(), u.String(), DefaultMaxConns)
	if err != nil {
		t.Fatal(err)
	}
	db.connWait = time.Minute
	db.log = slog.New(slog.DiscardHandler)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrateTeamScore: migration 00012 gives the decisions and acts of a
// database written by the 00010 binary their member's team, leaves the
// reactions' score empty, and the trail those rows were sealed under
// still verifies (their commitments did not cover the new columns); rows
// written after it are sealed with the new columns, and a change to an old
// row's other columns is still found. Not parallel: it writes the old rows
// with the old column lists of sealTables, as the old binary did.
func TestMigrateTeamScore(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *DB{EngineSQLite: oldSQLite, EnginePostgres: oldPostgres} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			db.key = margen.AuditKey("migrate test audit key, 32 bytes")
			p := upTo(t, db, 10)
			org := &margen.Org{Slug: "o", Name: "O", Currency: "EUR", Timezone: "UTC", Language: "es"}
			if err := db.CreateOrg(ctx, org, &margen.Member{Login: "owner", Name: "Owner", Role: "owner"}, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "sala", Name: "Sala"}, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "barra", Name: "Barra"}, "test"); err != nil {
				t.Fatal(err)
			}
			ana := &margen.Member{OrgID: org.ID, Login: "ana", Name: "Ana", Access: "staff", Role: "waiter", Team: "sala"}
			if err := db.CreateMember(ctx, ana, "test"); err != nil {
				t.Fatal(err)
			}

			// A decision, its act and a reaction as the 00010 binary wrote
			// them: without the new columns, sealed without them.
			legacy := map[string]int{}
			for i := range sealTables {
				if st := &sealTables[i]; st.added > 0 {
					legacy[st.name] = len(st.cols)
					st.cols = st.cols[:len(st.cols)-st.added]
				}
			}
			restore := func() {
				for i := range sealTables {
					if n, ok := legacy[sealTables[i].name]; ok {
						sealTables[i].cols = sealTables[i].cols[:n]
					}
				}
				legacy = nil
			}
			defer func() {
				if legacy != nil {
					restore()
				}
			}()
			at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
			ts := db.d.ts(at)
			err := db.writeTx(ctx, func(w *wtx) error {
				c, err := w.lockOrg(org.ID)
				if err != nil {
					return err
				}
				for _, q := range []struct {
					sql  string
					args []any
				}{
					{`INSERT INTO decisions (org_id, id, member_id, customer_id, action, amount, currency, reason, context, outcome,
						policy_version, rule, explanation_code, explanation_args, flagged, budgets, act_id, approval_id, refusal_id,
						created_at, after_the_fact) VALUES (?, ?, ?, '', 'gift', 500, 'EUR', '', NULL, 'allowed', 1, 'r', 'ok', NULL,
						FALSE, '[]', 'act_old', '', '', ?, FALSE)`, []any{org.ID, "dec_old", ana.ID, ts}},
					{`INSERT INTO acts (org_id, id, decision_id, member_id, customer_id, action, amount, currency, reason, flagged,
						created_at, after_the_fact) VALUES (?, 'act_old', 'dec_old', ?, '', 'gift', 500, 'EUR', '', FALSE, ?, FALSE)`,
						[]any{org.ID, ana.ID, ts}},
					{`INSERT INTO reactions (org_id, id, act_id, source, sentiment, note, member_id, created_at)
						VALUES (?, 'rea_old', 'act_old', 'employee', 'positive', '', ?, ?)`, []any{org.ID, ana.ID, ts}},
				} {
					if _, err := w.exec(q.sql, q.args...); err != nil {
						return err
					}
				}
				w.touch("decisions", org.ID, "id", "dec_old")
				w.touch("acts", org.ID, "id", "act_old")
				w.touch("reactions", org.ID, "id", "rea_old")
				return w.audit(c, newAudit(org.ID, ana.ID, "decision.create", "dec_old", map[string]any{}, at))
			})
			if err != nil {
				t.Fatal(err)
			}
			restore()

			if _, err := p.Up(ctx); err != nil {
				t.Fatal(err)
			}
			check := func(what string, want ...string) {
				t.Helper()
				rep, err := db.CheckAudit(ctx, org.ID)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, p := range rep.Problems {
					got = append(got, p.What+" "+p.Table+" "+p.Key)
				}
				if strings.Join(got, "; ") != strings.Join(want, "; ") {
					t.Fatalf("%s: problems %q, want %q", what, got, want)
				}
			}
			check("after the migration")
			d, err := db.GetDecision(ctx, org.ID, "dec_old")
			if err != nil || d.Team != "sala" {
				t.Fatalf("old decision after the migration: %+v, %v", d, err)
			}
			act, err := db.GetAct(ctx, org.ID, "act_old")
			if err != nil || act.Team != "sala" || len(act.Reactions) != 1 || act.Reactions[0].Score != nil {
				t.Fatalf("old act after the migration: %+v, %v", act, err)
			}

			// The old rows' other columns are still sealed.
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.write.ExecContext(ctx, db.d.rebind(q), args...); err != nil {
					t.Fatal(err)
				}
			}
			exec("UPDATE decisions SET amount = 5000 WHERE org_id = ? AND id = 'dec_old'", org.ID)
			check("an old row changed", "changed decisions dec_old")
			exec("UPDATE decisions SET amount = 500 WHERE org_id = ? AND id = 'dec_old'", org.ID)

			// A move to another team rewrites no history; what is written
			// from now on carries the team and the score, under the seal.
			if err := db.UpdateMember(ctx, org.ID, ana.ID, "staff", "waiter", "barra", "test"); err != nil {
				t.Fatal(err)
			}
			score := 9
			rea := &margen.Reaction{OrgID: org.ID, ActID: "act_old", Source: margen.SourceCustomer,
				Sentiment: margen.SentimentPositive, Score: &score}
			if err := db.RecordReaction(ctx, rea, nil); err != nil {
				t.Fatal(err)
			}
			dec := &margen.Decision{OrgID: org.ID, MemberID: ana.ID, Action: "gift", Currency: "EUR", PolicyVersion: 1,
				ID: margen.NewID("dec"), CreatedAt: time.Now()}
			apr := &margen.Approval{ApproverRole: "owner", SLA: time.Hour}
			if err := db.RequestException(ctx, org.ID, ana.ID, approval.ExceptionPlan(*dec, *apr, nil, nil)); err != nil {
				t.Fatal(err)
			}
			check("new rows")
			if d, err := db.GetDecision(ctx, org.ID, dec.ID); err != nil || d.Team != "barra" {
				t.Fatalf("new decision: %+v, %v", d, err)
			}
			if d, err := db.GetDecision(ctx, org.ID, "dec_old"); err != nil || d.Team != "sala" {
				t.Fatalf("old decision after the move: %+v, %v", d, err)
			}
			a, err := db.GetAct(ctx, org.ID, "act_old")
			if err != nil || len(a.Reactions) != 2 {
				t.Fatalf("reactions: %+v, %v", a, err)
			}
			for _, r := range a.Reactions {
				if (r.ID == rea.ID) != (r.Score != nil && *r.Score == 9) {
					t.Fatalf("reaction %s: score %v", r.ID, r.Score)
				}
			}
			exec("UPDATE decisions SET team = 'sala' WHERE org_id = ? AND id = ?", org.ID, dec.ID)
			exec("UPDATE reactions SET score = 10 WHERE org_id = ? AND id = ?", org.ID, rea.ID)
			check("new rows changed", "changed decisions "+dec.ID, "changed reactions "+rea.ID)

			// The score is bounded by the schema too.
			if _, err := db.write.ExecContext(ctx, db.d.rebind("UPDATE reactions SET score = 11 WHERE org_id = ?"), org.ID); err == nil {
				t.Fatal("a score of 11 was stored")
			}
			if _, err := p.DownTo(ctx, 10); err != nil {
				t.Fatalf("down: %v", err)
			}
		})
	}
}

// TestMigrateActiveIndexes: migration 00021 rebuilds policy_versions_active
// and webhooks_active with data in place: the active version is still
// found, a second active version of an organisation is still refused,
// after going up, down and up again.
func TestMigrateActiveIndexes(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *DB{EngineSQLite: oldSQLite, EnginePostgres: oldPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			p := upTo(t, db, 20)
			ts := db.d.ts(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
			exec := func(q string, args ...any) error {
				_, err := db.write.ExecContext(ctx, db.d.rebind(q), args...)
				return err
			}
			if err := exec("INSERT INTO orgs (id, slug, name, currency, timezone, language, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
				"org_1", "o", "O", "EUR", "UTC", "es", ts); err != nil {
				t.Fatal(err)
			}
			for v := 1; v <= 3; v++ {
				if err := exec("INSERT INTO policy_versions (org_id, version, source, active, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
					"org_1", v, "version: 1", v == 2, "mem_1", ts); err != nil {
					t.Fatal(err)
				}
			}
			for i, active := range []bool{false, true} {
				if err := exec("INSERT INTO webhooks (org_id, id, url, events, secret, active, after_seq, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
					"org_1", fmt.Sprint("whk_", i), "https://example.com/h", `["*"]`, "whsec_x", active, 0, ts); err != nil {
					t.Fatal(err)
				}
			}
			check := func(when string) {
				t.Helper()
				pv, err := db.ActivePolicy(ctx, "org_1")
				if err != nil || pv.Version != 2 {
					t.Fatalf("%s: active policy = %+v, %v; want version 2", when, pv, err)
				}
				orgs, err := db.OrgsWithWebhooks(ctx)
				if err != nil || !slices.Equal(orgs, []string{"org_1"}) {
					t.Fatalf("%s: organisations with webhooks = %v, %v", when, orgs, err)
				}
				if err := exec("UPDATE policy_versions SET active = TRUE WHERE org_id = ? AND version = 3", "org_1"); err == nil {
					t.Fatalf("%s: a second active version was stored", when)
				}
			}
			up := func() error { _, err := p.UpTo(ctx, 21); return err }
			down := func() error { _, err := p.DownTo(ctx, 20); return err }
			for _, step := range []struct {
				name string
				do   func() error
			}{{"up", up}, {"down", down}, {"up again", up}} {
				if err := step.do(); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				check(step.name)
			}
		})
	}
}
