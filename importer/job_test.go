package importer_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/importer"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// runJobs runs the due import jobs once and returns how many ran.
func runJobs(t *testing.T, r *jobs.Runner) int {
	t.Helper()
	n, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func upload(t *testing.T, db *store.DB, org *margen.Org, memberID, kind string, data []byte) *margen.Upload {
	t.Helper()
	u := &margen.Upload{ID: margen.NewID("upl"), OrgID: org.ID, MemberID: memberID, Kind: kind, FileName: "f.csv", Data: data, CreatedAt: time.Now()}
	if err := db.CreateUpload(context.Background(), u, importer.CheckJob(u)); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUploadJobs: the desk's import as jobs of the queue. The check job
// reports exactly the bad lines (with their line numbers and fields) and
// writes nothing; the confirmed import writes exactly the good lines, with
// its progress tracked while it runs; the same file again changes nothing;
// a file refused as a whole fails with its reason; an uploader who lost
// their rights imports nothing. Both engines.
func TestUploadJobs(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	data, bad := customersFile(n)
	good := n - len(bad)
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			ctx := context.Background()
			db := eng.Open(t)
			org := newOrg(t, db, "upl")
			owner, err := db.MemberByLogin(ctx, org.ID, "owner")
			if err != nil {
				t.Fatal(err)
			}
			tr := importer.NewTracker()
			r := jobs.New(db, jobs.Options{Logger: slog.New(slog.DiscardHandler)})
			r.Register(margen.JobImport, importer.Kind(db, tr))
			seq0 := lastSeq(t, db, org.ID)

			u := upload(t, db, org, owner.ID, margen.ImportCustomers, data)
			start := time.Now()
			if got := runJobs(t, r); got != 1 {
				t.Fatalf("ran %d jobs, want the check", got)
			}
			t.Logf("check job of %d lines (%s): %s", n, eng.Name, time.Since(start).Round(time.Millisecond))
			u, _ = db.GetUpload(ctx, org.ID, u.ID, true)
			rep, err := importer.DecodeReport(u.Report)
			if err != nil || u.Status != margen.UploadChecked || rep == nil {
				js, _ := db.RecentJobs(ctx, margen.JobImport, 1)
				t.Fatalf("after the check: %s, %v; job %+v", u.Status, err, js)
			}
			if !slices.Equal(errorLines(rep), bad) || rep.Bad != len(bad) || rep.New != good || rep.Applied {
				t.Fatalf("check reports %s, bad lines %v...", counts(rep), head(errorLines(rep)))
			}
			for _, e := range rep.Errors {
				if e.Key == "" || e.Line < 2 {
					t.Fatalf("a line error without key or line: %+v", e)
				}
			}
			if e := rep.Errors[0]; e.Field != "name" || e.Line != 101 {
				t.Errorf("the first bad line (101, a name too long) is %d, field %q", e.Line, e.Field)
			}
			if c := count(t, db, "customers", org.ID); c != 0 || lastSeq(t, db, org.ID) != seq0 {
				t.Fatalf("the check wrote %d customers", c)
			}

			if ok, err := db.ConfirmUpload(ctx, org.ID, u.ID, true, time.Now(), importer.ApplyJob(u)); err != nil || !ok {
				t.Fatalf("confirm: %v, %v", ok, err)
			}
			start = time.Now()
			if got := runJobs(t, r); got != 1 {
				t.Fatalf("ran %d jobs, want the import", got)
			}
			t.Logf("import job of %d good lines (%s): %s", good, eng.Name, time.Since(start).Round(time.Millisecond))
			u, _ = db.GetUpload(ctx, org.ID, u.ID, true)
			rep, _ = importer.DecodeReport(u.Report)
			if u.Status != margen.UploadDone || rep.New != good || !rep.Applied || u.Done != good || u.Total != good || len(u.Data) != 0 {
				t.Fatalf("after the import: status %s done %d/%d, %s", u.Status, u.Done, u.Total, counts(rep))
			}
			if _, _, ok := tr.Progress(u.ID); ok {
				t.Error("the tracker still holds a finished import")
			}
			if c := count(t, db, "customers", org.ID); c != good {
				t.Fatalf("imported %d customers, want %d", c, good)
			}
			// The jobs ran once: nothing is left to run.
			if got := runJobs(t, r); got != 0 {
				t.Fatalf("%d more jobs ran", got)
			}

			// The same file again: checked, nothing to import.
			seq1 := lastSeq(t, db, org.ID)
			again := upload(t, db, org, owner.ID, margen.ImportCustomers, data)
			runJobs(t, r)
			again, _ = db.GetUpload(ctx, org.ID, again.ID, true)
			rep, _ = importer.DecodeReport(again.Report)
			if again.Status != margen.UploadChecked || rep.New != 0 || rep.Updated != 0 || rep.Unchanged != good || lastSeq(t, db, org.ID) != seq1 {
				t.Fatalf("the same file again: %s %s", again.Status, counts(rep))
			}

			// A file refused as a whole: failed, with its reason.
			broken := upload(t, db, org, owner.ID, margen.ImportCustomers, []byte("colour;size\nred;1\n"))
			runJobs(t, r)
			broken, _ = db.GetUpload(ctx, org.ID, broken.ID, true)
			if key, _ := importer.DecodeProblem(broken.Problem); broken.Status != margen.UploadFailed || key != "error.import_unknown_column" || len(broken.Data) != 0 {
				t.Fatalf("a file with unknown columns: %s %q", broken.Status, broken.Problem)
			}

			// The uploader loses their rights before the import runs.
			teams := upload(t, db, org, owner.ID, margen.ImportTeams, []byte("slug;nombre\ncocina;Cocina\n"))
			runJobs(t, r)
			teams, _ = db.GetUpload(ctx, org.ID, teams.ID, true)
			if teams.Status != margen.UploadChecked {
				t.Fatalf("teams file: %s %s", teams.Status, teams.Problem)
			}
			if ok, err := db.ConfirmUpload(ctx, org.ID, teams.ID, false, time.Now(), importer.ApplyJob(teams)); err != nil || !ok {
				t.Fatalf("confirm: %v, %v", ok, err)
			}
			if _, err := db.SQL().Exec(db.Rebind("UPDATE members SET active = ? WHERE id = ?"), false, owner.ID); err != nil {
				t.Fatal(err)
			}
			runJobs(t, r)
			teams, _ = db.GetUpload(ctx, org.ID, teams.ID, true)
			if key, _ := importer.DecodeProblem(teams.Problem); teams.Status != margen.UploadFailed || key != "ops.import.error.uploader" {
				t.Fatalf("an uploader without rights: %s %q", teams.Status, teams.Problem)
			}
			if c := count(t, db, "teams", org.ID); c != 0 {
				t.Fatalf("%d teams imported by a member without rights", c)
			}
		})
	}
}

// TestUploadRetention: the hourly purge expires an upload left checked
// for a day (its file dropped, the reason translated in both languages)
// and deletes uploads a week after their last change.
func TestUploadRetention(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	org := newOrg(t, db, "ret")
	owner, err := db.MemberByLogin(ctx, org.ID, "owner")
	if err != nil {
		t.Fatal(err)
	}
	r := jobs.New(db, jobs.Options{Logger: slog.New(slog.DiscardHandler)})
	r.Register(margen.JobImport, importer.Kind(db, nil))
	u := upload(t, db, org, owner.ID, margen.ImportTeams, []byte("slug;nombre\ncocina;Cocina\n"))
	runJobs(t, r)
	purge := importer.PurgeKind(db).Handler
	now := time.Now()
	if err := purge(ctx, &jobs.Attempt{Job: &margen.Job{}, Now: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetUpload(ctx, org.ID, u.ID, true); got.Status != margen.UploadChecked || len(got.Data) == 0 {
		t.Fatalf("an hour later: %s", got.Status)
	}
	if err := purge(ctx, &jobs.Attempt{Job: &margen.Job{}, Now: now.Add(importer.UnconfirmedFor + time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got, _ := db.GetUpload(ctx, org.ID, u.ID, true)
	key, _ := importer.DecodeProblem(got.Problem)
	if got.Status != margen.UploadFailed || len(got.Data) != 0 || key != "ops.import.error.expired" {
		t.Fatalf("a day later: %s %q", got.Status, got.Problem)
	}
	if ok, _ := db.ConfirmUpload(ctx, org.ID, u.ID, false, now, importer.ApplyJob(u)); ok {
		t.Fatal("an expired upload was confirmed")
	}
	if err := purge(ctx, &jobs.Attempt{Job: &margen.Job{}, Now: now.Add(importer.KeepUploads + 2*time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetUpload(ctx, org.ID, u.ID, true); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("a week later: %v", err)
	}
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ops.import.error.expired", "ops.import.error.uploader", "ops.import.error.failed"} {
		for _, lang := range []string{"es", "en"} {
			if !cat.Has(lang, k) {
				t.Errorf("the catalogue lacks %s in %s", k, lang)
			}
		}
	}
}
