package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

func openKey(t *testing.T, dsn string, key margen.AuditKey) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, store.Options{Migrate: true, AuditKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAuditKeyMismatch: a process with another key neither verifies nor
// writes a sealed chain, and says why.
func TestAuditKeyMismatch(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.DSN(t)
			db := openKey(t, dsn, storetest.TestAuditKey)
			org := &margen.Org{Slug: "k", Name: "K", Currency: "EUR", Timezone: "UTC", Language: "es"}
			if err := db.CreateOrg(ctx, org, &margen.Member{Login: "o", Name: "O", Role: "owner"}, "test"); err != nil {
				t.Fatal(err)
			}
			otherKey := margen.AuditKey("some other key, 32 bytes long..")
			// A server (which migrates on start) refuses to start with it.
			if _, err := store.Open(ctx, dsn, store.Options{Migrate: true, AuditKey: otherKey}); err == nil ||
				!strings.Contains(err.Error(), "audit key does not match") {
				t.Fatalf("open with another key: %v", err)
			}
			other, err := store.Open(ctx, dsn, store.Options{AuditKey: otherKey})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			rep, err := other.CheckAudit(ctx, org.ID)
			if err != nil || rep.OK() || rep.Problems[0].What != "key" || !strings.Contains(rep.Problems[0].Detail, "audit key does not match") {
				t.Fatalf("check with another key: %+v, %v", rep, err)
			}
			err = other.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "t", Name: "T"}, "test")
			if err == nil || !strings.Contains(err.Error(), "audit key does not match") {
				t.Fatalf("write with another key: %v", err)
			}
			if rep, err := db.CheckAudit(ctx, org.ID); err != nil || !rep.OK() {
				t.Fatalf("the right key after the refused write: %+v, %v", rep, err)
			}
		})
	}
}

// TestSealLegacyChain: a chain written before audit keys (SHA-256 links,
// no row commitments, not sealed) is reported unsealed, and opening the
// database with the key and Migrate seals it: an audit.seal entry that
// commits to every row stored so far, after which edits are found.
func TestSealLegacyChain(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := e.DSN(t)
			db := openKey(t, dsn, storetest.TestAuditKey)
			org := &margen.Org{Slug: "legacy", Name: "L", Currency: "EUR", Timezone: "UTC", Language: "es"}
			owner := &margen.Member{Login: "o", Name: "O", Role: "owner"}
			if err := db.CreateOrg(ctx, org, owner, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "t", Name: "T"}, "test"); err != nil {
				t.Fatal(err)
			}
			// Rewrite it as a release before the seal wrote it.
			audit, err := db.ListAudit(ctx, org.ID, 0, 500)
			if err != nil {
				t.Fatal(err)
			}
			prev := ""
			for _, a := range audit {
				a.Rows, a.PrevHash = "", prev
				a.Hash = margen.ChainHash(&a)
				if _, err := db.SQL().ExecContext(ctx, db.Rebind("UPDATE audit_log SET prev_hash = ?, hash = ?, row_digests = '' WHERE org_id = ? AND seq = ?"),
					a.PrevHash, a.Hash, org.ID, a.Seq); err != nil {
					t.Fatal(err)
				}
				prev = a.Hash
			}
			if _, err := db.SQL().ExecContext(ctx, db.Rebind("UPDATE orgs SET audit_head = ?, audit_sealed_from = 0, audit_key_id = '' WHERE id = ?"), prev, org.ID); err != nil {
				t.Fatal(err)
			}
			rep, err := db.CheckAudit(ctx, org.ID)
			if err != nil || rep.OK() || rep.Problems[0].What != "unsealed" {
				t.Fatalf("legacy chain: %+v, %v", rep, err)
			}

			db2 := openKey(t, dsn, storetest.TestAuditKey) // migrate seals it
			rep, err = db2.CheckAudit(ctx, org.ID)
			if err != nil || !rep.OK() || rep.SealedFrom != int64(len(audit))+1 || rep.Rows != 2 {
				t.Fatalf("sealed legacy chain: %+v, %v", rep, err)
			}
			last, err := db2.ListAudit(ctx, org.ID, int64(len(audit)), 1)
			if err != nil || len(last) != 1 || last[0].Action != "audit.seal" {
				t.Fatalf("seal entry: %+v, %v", last, err)
			}
			// Writes go on, keyed; the legacy entries still verify.
			if err := db2.CreateTeam(ctx, &margen.Team{OrgID: org.ID, Slug: "u", Name: "U"}, "test"); err != nil {
				t.Fatal(err)
			}
			if rep, err := db2.CheckAudit(ctx, org.ID); err != nil || !rep.OK() {
				t.Fatalf("after a write: %+v, %v", rep, err)
			}
			// And an edit of a row written before the seal is found.
			if _, err := db2.SQL().ExecContext(ctx, db2.Rebind("UPDATE members SET access = 'frontline' WHERE org_id = ? AND id = ?"), org.ID, owner.ID); err != nil {
				t.Fatal(err)
			}
			rep, err = db2.CheckAudit(ctx, org.ID)
			if err != nil || rep.OK() || rep.Problems[0].Table != "members" || rep.Problems[0].Key != owner.ID {
				t.Fatalf("edit of a legacy row: %+v, %v", rep, err)
			}
		})
	}
}
