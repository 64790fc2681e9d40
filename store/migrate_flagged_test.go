package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// TestMigrateActsFlagged: migration 00020 rebuilds acts_flagged of a SQLite
// database written by the 00019 binary; the flagged and unflagged lists
// are the same before and after it and after it goes down and up again,
// and the ledger still checks.
func TestMigrateActsFlagged(t *testing.T) {
	ctx := context.Background()
	db, migrateTo, err := store.OpenSQLiteAt(ctx, filepath.Join(t.TempDir(), "old.db"),
		margen.AuditKey("flagged test audit key, 32 bytes"), 19)
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
	d := &storetest.Decider{Limit: 1 << 40, At: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	for i := range 200 {
		d.Reqs = append(d.Reqs, storetest.Request{OrgID: org.ID, MemberID: owner.ID, CustomerRef: fmt.Sprint("c", i%30), Amount: 100})
	}
	if err := db.DecideBatch(ctx, d.Query(), d.Decide); err != nil {
		t.Fatal(err)
	}
	// Every seventh act flagged, as the 00019 binary stored a flag (1).
	var flagged []string
	for i, x := range d.Out {
		if i%7 == 0 {
			flagged = append(flagged, x.ActID)
			if _, err := db.SQL().ExecContext(ctx, "UPDATE acts SET flagged = 1 WHERE org_id = ? AND id = ?", org.ID, x.ActID); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(flagged)
	slices.Reverse(flagged)
	list := func(what string, yes bool, want int) {
		t.Helper()
		acts, err := db.ListActs(ctx, org.ID, margen.ActFilter{Flagged: &yes, Page: margen.Page{Limit: 500}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range acts {
			ids = append(ids, a.ID)
		}
		if len(ids) != want || (yes && !slices.Equal(ids, flagged)) {
			t.Fatalf("%s: flagged=%t lists %d acts, want %d", what, yes, len(ids), want)
		}
	}
	for _, step := range []struct {
		what string
		to   int64
	}{{"before", 19}, {"after", 20}, {"down", 19}, {"up again", 20}} {
		if err := migrateTo(step.to); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		list(step.what, true, len(flagged))
		list(step.what, false, 200-len(flagged))
	}
	rep, err := db.CheckLedger(ctx, org.ID)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %+v, %v", rep, err)
	}
}
