package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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

// Webhook dispatch stops at an entry whose data does not decode, with an
// error naming it, rather than skip events receivers are owed; nothing
// after it is dispatched and its cursor stays.
func TestDispatchStopsAtUndecodableEntry(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db := e.Open(t)
			org := &margen.Org{ID: margen.NewID("org"), Slug: "w", Name: "w", Currency: "EUR", Timezone: "UTC", Language: "es"}
			owner := &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: "boss", Name: "Boss",
				Access: margen.AccessOwner, Role: "owner", Active: true}
			if err := db.CreateOrg(ctx, org, owner, "test"); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateWebhook(ctx, &margen.Webhook{OrgID: org.ID, URL: "https://example.test/hook",
				Events: []string{"*"}}, owner.ID, nil); err != nil {
				t.Fatal(err)
			}
			err := db.Import(ctx, margen.ImportQuery{OrgID: org.ID, Kind: margen.ImportTeams},
				func(*margen.ImportState) (*margen.ImportWrite, error) {
					return &margen.ImportWrite{Audit: []margen.AuditEntry{
						{OrgID: org.ID, Actor: owner.ID, Action: margen.ActionPolicyPublish, Subject: "policy",
							Data: json.RawMessage(`{"version":"two"}`)},
						{OrgID: org.ID, Actor: owner.ID, Action: margen.ActionPolicyPublish, Subject: "policy",
							Data: json.RawMessage(`{"version":2,"note":"","source_sha256":"ab"}`)},
					}}, nil
				})
			if err != nil {
				t.Fatal(err)
			}
			last, err := db.LastAuditSeq(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				n, err := db.DispatchWebhooks(ctx, org.ID, time.Now(), 100)
				if n != 0 || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("audit entry %d (policy.publish)", last-1)) {
					t.Fatalf("DispatchWebhooks = %d, %v", n, err)
				}
			}
			if n, err := db.PendingDeliveries(ctx); n != 0 || err != nil {
				t.Fatalf("PendingDeliveries = %d, %v", n, err)
			}
		})
	}
}
