package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/margenhq/margen"
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
			p, err := db.provider(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 2); err != nil {
				t.Fatal(err)
			}
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
