package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/store/storetest"
)

// TestUploads: an upload is stored with its check job in one transaction,
// read back only by its organisation, confirmed once (with its import
// job), updated, and its file dropped once final; RecentJobs lists a
// kind's jobs, latest due first. Both engines.
func TestUploads(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.Open(t)
			o := testsupport.NewOrg(t, db, testsupport.OrgOptions{})
			other := testsupport.NewOrg(t, db, testsupport.OrgOptions{})
			at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
			data := []byte("ref;nombre\ncli-1;Ana\x00\xff\n") // bytes kept as they are
			u := &margen.Upload{ID: "upl_1", OrgID: o.Org.ID, MemberID: o.Owner.ID, Kind: margen.ImportCustomers, FileName: "clientes.csv",
				Data: data, CreatedAt: at}
			check := &margen.Job{Kind: margen.JobImport, OrgID: o.Org.ID, UniqueKey: "u1:check", Payload: json.RawMessage(`{"upload":"u1"}`)}
			if err := db.CreateUpload(ctx, u, check); err != nil {
				t.Fatal(err)
			}
			got, err := db.GetUpload(ctx, o.Org.ID, u.ID, true)
			if err != nil || string(got.Data) != string(data) || got.Status != margen.UploadChecking || got.Size != int64(len(data)) ||
				got.FileName != "clientes.csv" || !got.CreatedAt.Equal(at) || got.MemberID != o.Owner.ID {
				t.Fatalf("GetUpload = %+v, %v", got, err)
			}
			if light, err := db.GetUpload(ctx, o.Org.ID, u.ID, false); err != nil || light.Data != nil || light.Size != int64(len(data)) {
				t.Fatalf("GetUpload without the file: %v, %v", light, err)
			}
			if _, err := db.GetUpload(ctx, other.Org.ID, u.ID, true); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("another organisation's upload: %v", err)
			}
			js, err := db.RecentJobs(ctx, margen.JobImport, 10)
			if err != nil || len(js) != 1 || js[0].UniqueKey != "u1:check" || js[0].OrgID != o.Org.ID {
				t.Fatalf("the check job: %+v, %v", js, err)
			}

			// Not checked yet: cannot be confirmed.
			imp := &margen.Job{Kind: margen.JobImport, OrgID: o.Org.ID, UniqueKey: "u1:apply"}
			if ok, err := db.ConfirmUpload(ctx, o.Org.ID, u.ID, true, at, imp); err != nil || ok {
				t.Fatalf("confirming an upload being checked: %v, %v", ok, err)
			}
			got.Status, got.Report = margen.UploadChecked, json.RawMessage(`{"lines":1}`)
			if err := db.UpdateUpload(ctx, got); err != nil {
				t.Fatal(err)
			}
			if ok, err := db.ConfirmUpload(ctx, other.Org.ID, u.ID, true, at, imp); err != nil || ok {
				t.Fatalf("another organisation confirmed: %v, %v", ok, err)
			}
			if ok, err := db.ConfirmUpload(ctx, o.Org.ID, u.ID, true, at.Add(time.Minute), imp); err != nil || !ok {
				t.Fatalf("confirm: %v, %v", ok, err)
			}
			if ok, err := db.ConfirmUpload(ctx, o.Org.ID, u.ID, true, at.Add(time.Minute), imp); err != nil || ok {
				t.Fatalf("confirmed twice: %v, %v", ok, err)
			}
			got, _ = db.GetUpload(ctx, o.Org.ID, u.ID, true)
			if got.Status != margen.UploadImporting || !got.SkipBad || string(got.Report) != `{"lines":1}` || len(got.Data) == 0 {
				t.Fatalf("after confirming: %+v", got)
			}
			js, _ = db.RecentJobs(ctx, margen.JobImport, 10)
			if len(js) != 2 || js[0].UniqueKey != "u1:apply" {
				t.Fatalf("jobs after confirming: %+v", js)
			}

			got.Status, got.Done, got.Total, got.Problem = margen.UploadDone, 1, 1, json.RawMessage(`{"key":"x"}`)
			if err := db.UpdateUpload(ctx, got); err != nil {
				t.Fatal(err)
			}
			got, _ = db.GetUpload(ctx, o.Org.ID, u.ID, true)
			if got.Status != margen.UploadDone || len(got.Data) != 0 || got.Done != 1 || got.Total != 1 || string(got.Problem) != `{"key":"x"}` {
				t.Fatalf("after the import: %+v", got)
			}
			list, err := db.ListUploads(ctx, o.Org.ID, 10)
			if err != nil || len(list) != 1 || list[0].ID != u.ID || list[0].Data != nil {
				t.Fatalf("ListUploads = %+v, %v", list, err)
			}
			if list, _ := db.ListUploads(ctx, other.Org.ID, 10); len(list) != 0 {
				t.Fatalf("another organisation lists %d uploads", len(list))
			}
			got.OrgID = other.Org.ID
			if err := db.UpdateUpload(ctx, got); !margen.IsCode(err, margen.ENOTFOUND) {
				t.Fatalf("updating through another organisation: %v", err)
			}

			// Retention: a checked upload not confirmed expires (its file
			// dropped); old uploads are deleted.
			stale := &margen.Upload{ID: "upl_2", OrgID: o.Org.ID, MemberID: o.Owner.ID, Kind: margen.ImportTeams, FileName: "t.csv",
				Data: []byte("slug;name\n"), CreatedAt: at}
			if err := db.CreateUpload(ctx, stale, &margen.Job{Kind: margen.JobImport, OrgID: o.Org.ID, UniqueKey: "u2:check"}); err != nil {
				t.Fatal(err)
			}
			stale.Status, stale.UpdatedAt = margen.UploadChecked, at
			if err := db.UpdateUpload(ctx, stale); err != nil {
				t.Fatal(err)
			}
			exp, del, err := db.ExpireUploads(ctx, at.Add(time.Second), at.Add(-time.Hour), json.RawMessage(`{"key":"gone"}`), 10)
			if err != nil || exp != 1 || del != 0 {
				t.Fatalf("ExpireUploads = %d, %d, %v", exp, del, err)
			}
			stale, _ = db.GetUpload(ctx, o.Org.ID, "upl_2", true)
			if stale.Status != margen.UploadFailed || len(stale.Data) != 0 || string(stale.Problem) != `{"key":"gone"}` {
				t.Fatalf("an expired upload: %s %q", stale.Status, stale.Problem)
			}
			if exp, del, err := db.ExpireUploads(ctx, at.Add(time.Second), at.Add(time.Hour), nil, 10); err != nil || exp != 0 || del != 2 {
				t.Fatalf("deleting old uploads = %d, %d, %v", exp, del, err)
			}
			if list, _ := db.ListUploads(ctx, o.Org.ID, 10); len(list) != 0 {
				t.Fatalf("%d uploads left", len(list))
			}
			if broken, _, err := db.VerifyAudit(ctx, o.Org.ID); err != nil || broken != 0 {
				t.Fatalf("audit: %d, %v", broken, err)
			}
		})
	}
}
