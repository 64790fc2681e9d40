package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/importer"
	"github.com/margenhq/margen/internal/testsupport"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
	"github.com/margenhq/margen/web"
)

// opsSite is newSite's organisation served by web pages that also have
// the scheduled backups (nil: not configured) and the import tracker, as
// serve wires them, with the runner of the backup and import jobs.
func opsSite(t testing.TB, db *store.DB, backups *backup.Scheduler) (*site, *jobs.Runner) {
	t.Helper()
	return withOps(t, newSite(t, db, false), backups)
}

// withOps serves s's database and organisation with the backups and the
// import tracker.
func withOps(t testing.TB, s *site, backups *backup.Scheduler) (*site, *jobs.Runner) {
	t.Helper()
	db := s.DB
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	log := testsupport.Discard()
	broker := events.NewBroker(db, events.Options{Clock: s.Clock, Logger: log})
	engine := testsupport.Engine(t, db, decision.Options{Logger: log, Committed: broker.Notify})
	approvals := approval.New(db, engine, approval.Options{Clock: s.Clock, Logger: log, Notify: broker.Notify})
	tracker := importer.NewTracker()
	shutdown := make(chan struct{})
	t.Cleanup(func() { close(shutdown) })
	pages, err := web.New(web.Config{Store: db, Sessions: db.Sessions(), Engine: engine, Approvals: approvals,
		Broker: broker, Catalog: cat, Logger: log, Clock: s.Clock, InsecureCookies: true, Shutdown: shutdown,
		SessionIdle: time.Hour, Streams: s.Streams, Backups: backups, Imports: tracker})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pages)
	t.Cleanup(srv.Close)
	ops := *s
	ops.URL, ops.srv, ops.h = srv.URL, srv, pages
	r := jobs.New(db, jobs.Options{Logger: slog.New(slog.DiscardHandler)})
	r.Register(margen.JobImport, importer.Kind(db, tracker))
	if backups != nil {
		r.Register(margen.JobBackup, backups.Kind())
	}
	return &ops, r
}

// postFile sends the upload form.
func (c *client) postFile(path, kind, name string, data []byte) (*http.Response, string) {
	c.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if kind != "" {
		mw.WriteField("kind", kind)
	}
	if data != nil {
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(data)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", c.base+path, &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func runOnce(t *testing.T, r *jobs.Runner) int {
	t.Helper()
	n, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// opsPages are the desk's backup, import and export pages.
var opsPages = []struct{ method, path string }{
	{"GET", "/desk/backups"}, {"POST", "/desk/backups"}, {"GET", "/desk/imports"}, {"POST", "/desk/imports"},
	{"GET", "/desk/imports/upl_x"}, {"POST", "/desk/imports/upl_x/confirm"}, {"GET", "/desk/exports?kind=decisions&format=csv"},
}

// TestDeskImports: only managers open the import and export pages; an
// upload is checked by a job and its page lists every bad line with its
// line number and column in the reader's language; the manager confirms
// importing the good lines, the page polls the import's progress and then
// says what was written; bad uploads get a clear message; exports download
// as the API's. Both engines.
func TestDeskImports(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s, runner := opsSite(t, db, nil)
		ctx := context.Background()
		for _, login := range []string{"camila", "marta"} {
			c := s.client(t)
			c.signin(login, s.Pass[login])
			for _, pg := range opsPages {
				res, body := c.do(pg.method, pg.path, url.Values{})
				if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "<html") {
					t.Errorf("%s: %s %s: %d, want the 403 page", login, pg.method, pg.path, res.StatusCode)
				}
			}
		}
		if n := runOnce(t, runner); n != 0 {
			t.Fatalf("refused requests queued %d jobs", n)
		}

		m := s.client(t)
		m.signin("admin", s.Pass["admin"])
		res, body := m.do("GET", "/desk/imports", nil)
		if res.StatusCode != 200 || !strings.Contains(body, `enctype="multipart/form-data"`) || !strings.Contains(body, `action="/desk/exports"`) {
			t.Fatalf("imports page: %d %s", res.StatusCode, body)
		}

		// Windows-1252 with ";" as Excel writes it in Spanish: line 3 has
		// no reference, line 5 repeats line 2's.
		file := []byte("referencia;nombre;contacto\r\ncli-1;Jos\xe9;+57 1\r\n;Sin ref;\r\ncli-3;Ana;\r\ncli-1;Otra vez;\r\ncli-5;Luc\xeda;\r\n")
		res, body = m.postFile("/desk/imports", margen.ImportCustomers, "clientes.csv", file)
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusSeeOther || !regexp.MustCompile(`^/desk/imports/upl_[0-9a-f]+$`).MatchString(loc) {
			t.Fatalf("upload: %d %q %s", res.StatusCode, loc, body)
		}
		res, body = m.do("GET", loc, nil)
		if res.StatusCode != 200 || !strings.Contains(body, "Revisando el archivo") || !strings.Contains(body, `hx-trigger="every 1s"`) {
			t.Fatalf("the page while checking: %d %s", res.StatusCode, body)
		}
		if n := runOnce(t, runner); n != 1 {
			t.Fatalf("ran %d jobs, want the check", n)
		}
		if c, _ := db.ListUploads(ctx, s.Org.ID, 5); len(c) != 1 || c[0].Status != margen.UploadChecked {
			t.Fatalf("uploads after the check: %+v", c)
		}
		// A poll answers the fragment only, without polling any more.
		res, body = m.do("GET", loc, nil, "HX-Request", "true")
		if res.StatusCode != 200 || strings.Contains(body, "<html") || strings.Contains(body, "hx-trigger") || !strings.Contains(body, `id="upload-status"`) {
			t.Fatalf("the polled fragment: %d %s", res.StatusCode, body)
		}
		for _, want := range []string{
			`<th scope="row">3</th><td>Referencia</td>`,
			`<th scope="row">5</th><td>Referencia</td><td>&#34;cli-1&#34; ya está en la línea 2.</td>`,
			`<input type="hidden" name="skip_bad" value="1">`,
			"Importar las líneas buenas",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the check's report lacks %q:\n%s", want, body)
			}
		}
		// All or nothing cannot be confirmed with bad lines.
		if res, body := m.do("POST", loc+"/confirm", url.Values{}); res.StatusCode != http.StatusConflict || !strings.Contains(body, "no se eligió importar solo las buenas") {
			t.Fatalf("confirm without skipping bad lines: %d %s", res.StatusCode, body)
		}
		if res, _ := m.do("POST", loc+"/confirm", url.Values{"skip_bad": {"1"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("confirm: %d", res.StatusCode)
		}
		res, body = m.do("GET", loc, nil)
		if !strings.Contains(body, "Importando") || !strings.Contains(body, `hx-trigger="every 1s"`) {
			t.Fatalf("the page while importing: %s", body)
		}
		if n := runOnce(t, runner); n != 1 {
			t.Fatalf("ran %d jobs, want the import", n)
		}
		_, body = m.do("GET", loc, nil)
		if !strings.Contains(body, "Listo. Registros escritos: 3.") || strings.Contains(body, "hx-trigger") {
			t.Fatalf("the page after the import: %s", body)
		}
		c, err := db.CustomerByID(ctx, s.Org.ID, margen.CustomerID(s.Org.ID, "cli-5"))
		if err != nil || c.Name != "Lucía" {
			t.Fatalf("imported customer: %+v, %v", c, err)
		}
		// Confirming again changes nothing.
		if res, _ := m.do("POST", loc+"/confirm", url.Values{"skip_bad": {"1"}}); res.StatusCode != http.StatusConflict {
			t.Fatalf("a second confirmation: %d", res.StatusCode)
		}
		if n := runOnce(t, runner); n != 0 {
			t.Fatalf("a second confirmation queued %d jobs", n)
		}
		// In English the same report speaks English.
		if err := db.SetMemberLanguage(ctx, s.Org.ID, s.Org.Owner.ID, "en", "test"); err != nil {
			t.Fatal(err)
		}
		_, body = m.do("GET", loc, nil)
		if !strings.Contains(body, `<th scope="row">3</th><td>Reference</td>`) || !strings.Contains(body, "Done. Records written: 3.") {
			t.Errorf("the report in English: %s", body)
		}
		if err := db.SetMemberLanguage(ctx, s.Org.ID, s.Org.Owner.ID, "es", "test"); err != nil {
			t.Fatal(err)
		}

		// Bad uploads.
		for _, tc := range []struct {
			kind string
			data []byte
			code int
			want string
		}{
			{margen.ImportCustomers, nil, http.StatusBadRequest, "Elija un archivo"},
			{margen.ImportCustomers, []byte{}, http.StatusBadRequest, "Elija un archivo"},
			{"invoices", []byte("a\n1\n"), http.StatusBadRequest, "Elija qué contiene el archivo"},
			{margen.ImportCustomers, bytes.Repeat([]byte("x"), 8<<20+1), http.StatusRequestEntityTooLarge, "pasa de 8 MB"},
		} {
			res, body := m.postFile("/desk/imports", tc.kind, "x.csv", tc.data)
			if res.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("upload %s of %d bytes: %d, want %d with %q", tc.kind, len(tc.data), res.StatusCode, tc.code, tc.want)
			}
		}
		if n := runOnce(t, runner); n != 0 {
			t.Fatalf("bad uploads queued %d jobs", n)
		}
		if res, _ := m.do("GET", "/desk/imports/upl_nope", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("an unknown upload: %d", res.StatusCode)
		}
		_, body = m.do("GET", "/desk/imports", nil)
		if !strings.Contains(body, `<a href="`+loc+`">clientes.csv</a>`) || !strings.Contains(body, "Importado") {
			t.Errorf("the recent uploads lack the import: %s", body)
		}

		// At most 10 files waiting to be checked or confirmed.
		for i := range 10 {
			if res, body := m.postFile("/desk/imports", margen.ImportTeams, "t.csv", []byte("slug;nombre\nt1;T\n")); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("upload %d: %d %s", i, res.StatusCode, body)
			}
		}
		if res, body := m.postFile("/desk/imports", margen.ImportTeams, "t.csv", []byte("slug;nombre\nt1;T\n")); res.StatusCode != http.StatusTooManyRequests ||
			!strings.Contains(body, "Ya hay 10 archivos esperando") {
			t.Fatalf("an 11th waiting upload: %d", res.StatusCode)
		}

		// Exports.
		res, body = m.do("GET", "/desk/exports?kind=audit&format=csv&since=2000-01-01", nil)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(res.Header.Get("Content-Disposition"), `filename="demo-audit-from-20000101.csv"`) ||
			!strings.Contains(body, "customer.imported") && !strings.Contains(body, "import") {
			t.Fatalf("export: %d %v %s", res.StatusCode, res.Header, body)
		}
		res, body = m.do("GET", "/desk/exports?kind=decisions&format=jsonl", nil)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/jsonl") {
			t.Fatalf("JSON Lines export: %d %v", res.StatusCode, res.Header)
		}
		for _, q := range []string{"kind=decisions&format=xml", "kind=invoices&format=csv", "kind=decisions&format=csv&since=ayer",
			"kind=decisions&format=csv&since=2026-12-02&until=2026-12-01"} {
			res, body := m.do("GET", "/desk/exports?"+q, nil)
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="export-error"`) {
				t.Errorf("export %s: %d", q, res.StatusCode)
			}
		}
	})
}

// TestDeskBackups: the backups page says when backups are not configured;
// configured, "back up now" queues one job (once a minute), the job takes
// a verified backup, and the page lists it with its size and
// verification, and the jobs with their state. SQLite (backups are).
func TestDeskBackups(t *testing.T) {
	path := storetest.SQLitePath(t)
	db := storetest.OpenDSN(t, path)
	plain, _ := opsSite(t, db, nil)
	m := plain.client(t)
	m.signin("admin", plain.Pass["admin"])
	if res, body := m.do("GET", "/desk/backups", nil); res.StatusCode != 200 || !strings.Contains(body, "no están configuradas") {
		t.Fatalf("backups not configured: %d %s", res.StatusCode, body)
	}
	if res, _ := m.do("POST", "/desk/backups", url.Values{}); res.StatusCode != http.StatusConflict {
		t.Fatalf("back up now without backups: %d", res.StatusCode)
	}

	dir := filepath.Join(t.TempDir(), "backups")
	// A fixed clock an hour ago: the runner (system clock) finds its jobs due.
	clock := testsupport.NewClock(time.Now().Add(-time.Hour).Truncate(time.Minute).Add(30*time.Second), 0)
	sched := backup.NewScheduler(backup.Options{DSN: path, Dir: dir, Every: 6 * time.Hour, Keep: 5, Clock: clock,
		AuditKey: storetest.TestAuditKey})
	s, runner := withOps(t, plain, sched)
	m = s.client(t)
	m.signin("admin", s.Pass["admin"])
	res, body := m.do("GET", "/desk/backups", nil)
	if res.StatusCode != 200 || !strings.Contains(body, "Aún no hay ninguna copia") || !strings.Contains(body, "Una copia cada 6 h") {
		t.Fatalf("backups page: %d %s", res.StatusCode, body)
	}
	res, _ = m.do("POST", "/desk/backups", url.Values{})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/desk/backups?asked=1" {
		t.Fatalf("back up now: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = m.do("POST", "/desk/backups", url.Values{})
	if res.Header.Get("Location") != "/desk/backups?asked=0" {
		t.Fatalf("back up now twice in a minute: %q", res.Header.Get("Location"))
	}
	_, body = m.do("GET", "/desk/backups?asked=1", nil)
	if !strings.Contains(body, "Se pidió una copia") || !strings.Contains(body, "En espera o en curso") {
		t.Fatalf("after asking: %s", body)
	}
	if n := runOnce(t, runner); n != 1 {
		t.Fatalf("ran %d jobs, want one backup", n)
	}
	names, _ := backup.List(dir)
	if len(names) != 1 {
		js, _ := db.RecentJobs(context.Background(), margen.JobBackup, 3)
		t.Fatalf("backups: %v; jobs %+v", names, js)
	}
	_, body = m.do("GET", "/desk/backups", nil)
	for _, want := range []string{
		"<code>" + filepath.Base(names[0]) + "</code>",
		" kB</td>",
		"<td>Hecha</td>",
		"Última copia buena de este servidor",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the backups page lacks %q:\n%s", want, body)
		}
	}
	if !regexp.MustCompile(`Verificada: esquema versión \d+, \d+ movimientos del libro, [1-9]\d* entradas de auditoría`).MatchString(body) {
		t.Errorf("no verification shown:\n%s", body)
	}
}
