package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// TestWALBoundedUnderSustainedWrites: a writer that never pauses (batch after
// batch, as an import or scripts/ledgerscale does) leaves the background
// checkpoint no moment to finish, so without the writer's catch-up the
// write-ahead log never starts over and its file grows with every batch
// (19 GB after 1.4 million decisions). With the catch-up past
// walBehindFrames (set to 1 MiB here) the file stays within a few batches of
// that size (each batch of 100 writes about 1.7 MB of log; 80 of them
// without the catch-up leave a log of about 135 MB).
func TestWALBoundedUnderSustainedWrites(t *testing.T) {
	defer store.SetWALBehindFrames(256)()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "margen.db")
	db, err := store.Open(ctx, path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	org := &margen.Org{Slug: "wal", Name: "WAL", Currency: "EUR", Timezone: "UTC", Language: "en"}
	owner := &margen.Member{Login: "owner", Name: "Owner", Role: "manager", Active: true}
	if err := db.CreateOrg(ctx, org, owner, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: "version: 1", CreatedBy: owner.ID}, nil); err != nil {
		t.Fatal(err)
	}
	d := &storetest.Decider{Limit: 1 << 50, At: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)}
	const batches, size = 80, 100
	var peak int64
	for b := range batches {
		d.Reqs = d.Reqs[:0]
		for i := range size {
			k := b*size + i
			d.Reqs = append(d.Reqs, storetest.Request{OrgID: org.ID, MemberID: owner.ID,
				CustomerRef: fmt.Sprintf("c%05d", k), Amount: int64(100 + k%900)})
		}
		if err := db.DecideBatch(ctx, d.Query(), d.Decide); err != nil {
			t.Fatal(err)
		}
		d.At = d.At.Add(10 * time.Minute)
		if fi, err := os.Stat(path + "-wal"); err == nil {
			peak = max(peak, fi.Size())
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The log may hold the threshold and the batches written before a
	// background checkpoint noticed it was long (a few, on a loaded
	// machine); a log that never starts over holds every batch.
	if limit := int64(48 << 20); peak > limit {
		t.Fatalf("write-ahead log peaked at %d bytes over %d decisions (database %d bytes); want at most %d",
			peak, batches*size, st.Size(), limit)
	}
	t.Logf("log peak %d bytes, database %d bytes", peak, st.Size())
}
