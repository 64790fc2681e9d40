// Command ledgerscale builds a SQLite database with one organisation and
// many decisions, written through the store's own batch path
// (store.DB.DecideBatch with storetest.Decider), so every row is valid and
// sealed by the audit trail exactly as margen writes it: `margen ledger
// check` must pass on it. scripts/ledger-scale.sh measures the check's peak
// memory on it.
//
//	go run ./scripts/ledgerscale -db /tmp/scale.db -decisions 1000000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// scalePolicy is a valid policy for the generated organisation, so the
// server treats it as it would a real one (the decisions themselves are
// written by storetest.Decider, not evaluated against it).
const scalePolicy = `currency: EUR
actions:
  - id: gift
    label: {es: "Cortesía", en: "Gift"}
roles:
  - id: waiter
    label: {es: "Mesero", en: "Waiter"}
  - id: manager
    label: {es: "Gerente", en: "Manager"}
    inherits: [waiter]
budgets:
  - id: daily
    scope: member
    period: day
    limit: 100000
approval:
  approver: owner
  sla: 15m
  on_timeout: deny
grants:
  - id: gift
    role: waiter
    actions: [gift]
    max_amount: 1000
    budgets: [daily]
  - id: manager_gift
    role: manager
    actions: [gift]
    max_amount: 100000
`

func main() {
	path := flag.String("db", "", "SQLite database to create (must not exist)")
	n := flag.Int("decisions", 1_000_000, "decisions to write")
	batch := flag.Int("batch", 1000, "decisions per transaction")
	members := flag.Int("members", 200, "members deciding")
	customers := flag.Int("customers", 20000, "distinct customers")
	flag.Parse()
	if *path == "" {
		log.Fatal("-db is required")
	}
	if _, err := os.Stat(*path); err == nil {
		log.Fatalf("%s exists", *path)
	}
	key, err := margen.ParseAuditKey(os.Getenv("MARGEN_AUDIT_KEY"))
	if err != nil {
		log.Fatalf("MARGEN_AUDIT_KEY: %v", err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, *path, store.Options{Migrate: true, AuditKey: key})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	org := &margen.Org{Slug: "scale", Name: "Scale", Currency: "EUR", Timezone: "UTC", Language: "en"}
	owner := &margen.Member{Login: "owner", Name: "Owner", Role: "owner", Active: true}
	if err := db.CreateOrg(ctx, org, owner, ""); err != nil {
		log.Fatal(err)
	}
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: scalePolicy, CreatedBy: owner.ID}, nil); err != nil {
		log.Fatal(err)
	}
	ids := make([]string, *members)
	for i := range ids {
		m := &margen.Member{OrgID: org.ID, Login: fmt.Sprintf("m%05d", i), Name: "Member", Access: margen.AccessFrontline,
			Role: "waiter", Active: true}
		if err := db.CreateMember(ctx, m, owner.ID); err != nil {
			log.Fatal(err)
		}
		ids[i] = m.ID
	}
	// One batch per simulated ten minutes: the decisions spread over days
	// (member budgets) and months (customer budgets) as in a real year.
	at := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	start := time.Now()
	// Every tenth decision asks for approval; those requests stay pending,
	// due two years after they were asked, so the server's SLA worker has
	// nothing to do on this organisation, as on one whose requests are
	// answered in time.
	d := &storetest.Decider{Limit: 1 << 50, SLA: 2 * 365 * 24 * time.Hour}
	for done := 0; done < *n; {
		size := min(*batch, *n-done)
		d.Reqs = d.Reqs[:0]
		for i := range size {
			k := done + i
			r := storetest.Request{OrgID: org.ID, MemberID: ids[k%len(ids)],
				CustomerRef: fmt.Sprintf("c%06d", (k*7919)%*customers), Amount: int64(100 + k%900)}
			if k%10 == 9 {
				r.Action = "ask" // a request holding its amount
			}
			d.Reqs = append(d.Reqs, r)
		}
		d.At = at
		if err := db.DecideBatch(ctx, d.Query(), d.Decide); err != nil {
			log.Fatal(err)
		}
		done += size
		at = at.Add(10 * time.Minute)
		if done%(100*(*batch)) == 0 || done == *n {
			el := time.Since(start)
			fmt.Fprintf(os.Stderr, "%d decisions in %s (%.0f/s)\n", done, el.Round(time.Second), float64(done)/el.Seconds())
		}
	}
}
