package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// BenchDecideBatch measures DecideBatch with batches of size realistic
// decisions (decision, act, two ledger entries and account deltas, an audit
// entry and an idempotency record each; a new customer now and then), as
// the decision engine's single writer would issue them. It reports
// ns/decision and decisions/s.
func BenchDecideBatch(b *testing.B, open func(testing.TB) *store.DB, size int) {
	db := open(b)
	ctx := context.Background()
	org := &margen.Org{Slug: "bench", Name: "Bench", Currency: "EUR", Timezone: "Europe/Madrid", Language: "es"}
	if err := db.CreateOrg(ctx, org, &margen.Member{Login: "owner", Name: "Owner", Role: "manager", Active: true}, ""); err != nil {
		b.Fatal(err)
	}
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: "v1", CreatedBy: "bench"}, nil); err != nil {
		b.Fatal(err)
	}
	members := make([]string, 20)
	for i := range members {
		m := &margen.Member{OrgID: org.ID, Login: fmt.Sprint("m", i), Name: "M", Role: "waiter", Active: true}
		if err := db.CreateMember(ctx, m, ""); err != nil {
			b.Fatal(err)
		}
		members[i] = m.ID
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	n := 0
	d := &Decider{Limit: 1 << 50, At: at, Reqs: make([]Request, size)}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		for i := range d.Reqs {
			d.Reqs[i] = Request{OrgID: org.ID, MemberID: members[n%len(members)], CustomerRef: fmt.Sprint("c", n%5000),
				Amount: int64(100 + n%900), IdemKey: fmt.Sprint("k", n)}
			n++
		}
		if err := db.DecideBatch(ctx, d.Query(), d.Decide); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/decision")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "decisions/s")
}
