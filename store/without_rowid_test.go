package store_test

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// TestMigrateWithoutRowid: migration 00020 rebuilds decisions, acts (and
// the reactions pointing at them) and ledger_entries of a SQLite database
// written by the 00019 binary as WITHOUT ROWID tables. Every row comes
// through unchanged, the indexes and the reactions' foreign key are back,
// the audit trail and the ledger still check, new decisions go on, and the
// migration goes down and up again.
func TestMigrateWithoutRowid(t *testing.T) {
	ctx := context.Background()
	db, migrateTo, err := store.OpenSQLiteAt(ctx, filepath.Join(t.TempDir(), "old.db"),
		margen.AuditKey("rowid test audit key, 32 bytes.."), 19)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	org := &margen.Org{Slug: "o", Name: "O", Currency: "EUR", Timezone: "UTC", Language: "es"}
	owner := &margen.Member{Login: "owner", Name: "Owner", Role: "manager", Active: true}
	if err := db.CreateOrg(ctx, org, owner, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: "version: 1", CreatedBy: owner.ID}, nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	var acts []string
	decide := func(batches int) {
		t.Helper()
		d := &storetest.Decider{Limit: 100_000, At: at}
		for b := range batches {
			d.Reqs = d.Reqs[:0]
			for i := range 50 {
				r := storetest.Request{OrgID: org.ID, MemberID: owner.ID, CustomerRef: fmt.Sprintf("c%03d", (b*50+i)%70),
					Amount: int64(100 + i*7), Team: "sala"}
				if i%9 == 0 {
					r.Action = "ask"
				}
				d.Reqs = append(d.Reqs, r)
			}
			if err := db.DecideBatch(ctx, d.Query(), d.Decide); err != nil {
				t.Fatal(err)
			}
			for _, x := range d.Out {
				if x.ActID != "" {
					acts = append(acts, x.ActID)
				}
			}
			d.At = d.At.Add(time.Hour)
		}
		at = d.At
	}
	decide(8)
	for i, id := range acts[:40] {
		r := &margen.Reaction{OrgID: org.ID, ActID: id, Source: margen.SourceEmployee, Sentiment: margen.SentimentPositive}
		if i%2 == 1 {
			score := i % 11
			r.Source, r.Score = margen.SourceCustomer, &score
		}
		if err := db.RecordReaction(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}

	tables := []string{"decisions", "acts", "reactions", "ledger_entries"}
	dump := func() map[string][]string {
		t.Helper()
		out := map[string][]string{}
		for _, tbl := range tables {
			rows, err := db.SQL().QueryContext(ctx, "SELECT * FROM "+tbl+" ORDER BY org_id, id")
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				out[tbl] = append(out[tbl], fmt.Sprintf("%q", vals))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			out[tbl] = append(out[tbl], "columns "+strings.Join(cols, ","))
		}
		return out
	}
	// schema names each table's kind and its indexes.
	schema := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, tbl := range tables {
			var sql string
			if err := db.SQL().QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", tbl).Scan(&sql); err != nil {
				t.Fatal(err)
			}
			var idx []string
			rows, err := db.SQL().QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", tbl)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var name, sql string
				if err := rows.Scan(&name, &sql); err != nil {
					t.Fatal(err)
				}
				idx = append(idx, strings.Join(strings.Fields(sql), " "))
			}
			rows.Close()
			slices.Sort(idx)
			out[tbl] = fmt.Sprintf("without rowid %t; %s", strings.HasSuffix(sql, "WITHOUT ROWID"), strings.Join(idx, "; "))
		}
		return out
	}
	checks := func(what string) {
		t.Helper()
		rep, err := db.CheckAudit(ctx, org.ID)
		if err != nil || len(rep.Problems) != 0 {
			t.Fatalf("%s: audit check %+v, %v", what, rep.Problems, err)
		}
		led, err := db.CheckLedger(ctx, org.ID)
		if err != nil || !led.OK() {
			t.Fatalf("%s: ledger check %+v, %v", what, led, err)
		}
		if err := db.SQL().QueryRowContext(ctx, "SELECT 1 FROM pragma_foreign_key_check LIMIT 1").Scan(new(int)); err == nil {
			t.Fatalf("%s: foreign key violations", what)
		}
		// The reactions' foreign key holds (checked at COMMIT).
		_, err = db.SQL().ExecContext(ctx, `INSERT INTO reactions (org_id, id, act_id, source, sentiment, created_at)
			VALUES (?, 'rea_orphan', 'act_missing', 'customer', 'positive', 0)`, org.ID)
		if err == nil {
			t.Fatalf("%s: a reaction to a missing act was stored", what)
		}
	}

	before, oldSchema := dump(), schema()
	if n := len(before["ledger_entries"]); n < 600 {
		t.Fatalf("only %d ledger entries", n)
	}
	for _, tbl := range tables {
		if strings.HasPrefix(oldSchema[tbl], "without rowid true") {
			t.Fatalf("%s is WITHOUT ROWID before the migration: %s", tbl, oldSchema[tbl])
		}
	}
	checks("before")

	if err := migrateTo(20); err != nil {
		t.Fatal(err)
	}
	if after := dump(); !mapsEqual(before, after) {
		t.Fatal("rows changed by the migration")
	}
	newSchema := schema()
	for _, tbl := range tables {
		want := strings.Replace(oldSchema[tbl], "without rowid false", fmt.Sprintf("without rowid %t", tbl != "reactions"), 1)
		if newSchema[tbl] != want {
			t.Errorf("%s after the migration:\n%s\nwant\n%s", tbl, newSchema[tbl], want)
		}
	}
	checks("after the migration")

	// New decisions and reactions go on, under the seal.
	decide(2)
	if err := db.RecordReaction(ctx, &margen.Reaction{OrgID: org.ID, ActID: acts[len(acts)-1], Source: margen.SourceEmployee,
		Sentiment: margen.SentimentNegative}, nil); err != nil {
		t.Fatal(err)
	}
	checks("new rows")

	more := dump()
	if err := migrateTo(19); err != nil {
		t.Fatalf("down: %v", err)
	}
	if !mapsEqual(more, dump()) || !maps.Equal(oldSchema, schema()) {
		t.Fatalf("down: rows or schema differ\n%v\nwant\n%v", schema(), oldSchema)
	}
	checks("down")
	if err := migrateTo(20); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if !mapsEqual(more, dump()) || !maps.Equal(newSchema, schema()) {
		t.Fatal("up again: rows or schema differ")
	}
	checks("up again")
}

func mapsEqual(a, b map[string][]string) bool {
	return maps.EqualFunc(a, b, slices.Equal)
}
