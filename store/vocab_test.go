package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store/storetest"
)

// The store appends no audit entry whose action is outside the registry
// (margen.AuditActions): the whole write fails and the trail is unchanged.
func TestAuditRefusesUnregisteredAction(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			org := &margen.Org{ID: margen.NewID("org"), Slug: "v", Name: "v", Currency: "EUR", Timezone: "UTC", Language: "es"}
			owner := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
				Access: margen.AccessOwner, Role: "owner", Active: true}
			if err := db.CreateOrg(ctx, org, owner, "test"); err != nil {
				t.Fatal(err)
			}
			before, err := db.LastAuditSeq(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			write := func(action margen.AuditAction) error {
				q := margen.ImportQuery{OrgID: org.ID, Kind: margen.ImportTeams}
				return db.Import(ctx, q, func(*margen.ImportState) (*margen.ImportWrite, error) {
					return &margen.ImportWrite{Audit: []margen.AuditEntry{{OrgID: org.ID, Actor: owner.ID, Action: action,
						Subject: margen.ImportTeams, Data: json.RawMessage(`{}`)}}}, nil
				})
			}
			for _, bad := range []margen.AuditAction{"decision.allowed", "", "team.created"} {
				if err := write(bad); !margen.IsCode(err, margen.EINTERNAL) {
					t.Errorf("action %q written: %v", bad, err)
				}
			}
			if last, err := db.LastAuditSeq(ctx, org.ID); err != nil || last != before {
				t.Fatalf("trail moved from %d to %d (%v)", before, last, err)
			}
			if err := write(margen.ActionImportTeams); err != nil {
				t.Fatalf("a registered action: %v", err)
			}
			if last, err := db.LastAuditSeq(ctx, org.ID); err != nil || last != before+1 {
				t.Fatalf("trail at %d after a registered action, want %d (%v)", last, before+1, err)
			}
		})
	}
}
