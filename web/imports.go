package web

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/export"
	"github.com/margenhq/margen/importer"
)

// The manager's desk: imports and exports (imports.html). An uploaded CSV
// file is stored with a job that checks it (a dry run: every bad line
// with its line number and field); the manager reads the report and
// confirms, and a second job imports it, all or nothing or skipping the
// bad lines, while the page polls its progress. Neither step runs inside a
// request. Exports are streamed from the store as the API streams them.

const (
	// maxUpload bounds an uploaded file, like POST /api/v1/imports (the
	// server holds the file and its parsed lines in memory while a job
	// checks it); larger files go through margen import.
	maxUpload = 8 << 20
	// maxFileName bounds the name of an uploaded file, as shown.
	maxFileName = 200
	// uploadsShown is how many recent uploads the page lists.
	uploadsShown = 20
	// maxWaiting bounds the uploads of an organisation being checked or
	// waiting for confirmation (each holds its file in the database until
	// imported, or dropped after importer.UnconfirmedFor).
	maxWaiting = 10
	// errorsShown bounds the bad lines listed on the page.
	errorsShown = 2000
	// exportDeadline is how long a slow client may take over each part of
	// a download (as the API's).
	exportDeadline = time.Minute
)

var importKindKeys = map[string]string{
	margen.ImportCustomers: "ops.import.kind.customers",
	margen.ImportMembers:   "ops.import.kind.members",
	margen.ImportTeams:     "ops.import.kind.teams",
}

var exportKindKeys = map[string]string{
	export.Decisions: "ops.export.kind.decisions",
	export.Acts:      "ops.export.kind.acts",
	export.Reactions: "ops.export.kind.reactions",
	export.Refusals:  "ops.export.kind.refusals",
	export.Approvals: "ops.export.kind.approvals",
	export.Audit:     "ops.export.kind.audit",
}

var formatKeys = map[string]string{
	export.CSV:   "ops.export.format.csv",
	export.JSONL: "ops.export.format.jsonl",
}

// fieldKeys name the columns of the import files.
var fieldKeys = map[string]string{
	"ref": "ops.import.field.ref", "name": "ops.import.field.name", "contact": "ops.import.field.contact",
	"tags": "ops.import.field.tags", "login": "ops.import.field.login", "role": "ops.import.field.role",
	"access": "ops.import.field.access", "team": "ops.import.field.team", "language": "ops.import.field.language",
	"active": "ops.import.field.active", "slug": "ops.import.field.slug",
}

var uploadStatusKeys = map[string]string{
	margen.UploadChecking:  "ops.import.status.checking",
	margen.UploadChecked:   "ops.import.status.checked",
	margen.UploadImporting: "ops.import.status.importing",
	margen.UploadDone:      "ops.import.status.done",
	margen.UploadFailed:    "ops.import.status.failed",
}

// ImportKind, ExportKind, Format, Field and UploadStatus name a value in
// the page's language.
func (p *page) ImportKind(k string) string   { return p.word(importKindKeys, k) }
func (p *page) ExportKind(k string) string   { return p.word(exportKindKeys, k) }
func (p *page) Format(f string) string       { return p.word(formatKeys, f) }
func (p *page) UploadStatus(s string) string { return p.word(uploadStatusKeys, s) }
func (p *page) Field(f string) string        { return p.word(fieldKeys, f) }

type importsData struct {
	Kinds   []string
	Kind    string
	FileErr string
	Uploads []margen.Upload
	Export  exportForm
}

type exportForm struct {
	Kinds, Formats      []string
	Kind, Format        string
	Since, Until, Error string
}

func (s *server) importsPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "ops.imports.title", nil)
	s.renderImports(w, r, http.StatusOK, p, &importsData{Kind: margen.ImportCustomers}, exportForm{Kind: export.Decisions, Format: export.CSV})
}

func (s *server) renderImports(w http.ResponseWriter, r *http.Request, status int, p *page, d *importsData, ef exportForm) {
	ups, err := s.store.ListUploads(r.Context(), p.Org.ID, uploadsShown)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Kinds, d.Uploads = importer.Kinds(), ups
	ef.Kinds, ef.Formats = export.Kinds(), export.Formats()
	d.Export = ef
	p.Data = d
	s.render(w, r, status, "imports", "", p)
}

// upload stores an uploaded file with the job that checks it, then shows
// its page.
func (s *server) upload(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "ops.imports.title", nil)
	d := &importsData{}
	ef := exportForm{Kind: export.Decisions, Format: export.CSV}
	kind, name, data, err := readUpload(w, r)
	d.Kind = kind
	if err != nil {
		var ue uploadError
		if !errors.As(err, &ue) {
			s.fail(w, r, err)
			return
		}
		d.FileErr = p.T(string(ue))
		status := http.StatusBadRequest
		if ue == "ops.import.error.too_large" {
			status = http.StatusRequestEntityTooLarge
		}
		s.renderImports(w, r, status, p, d, ef)
		return
	}
	ups, err := s.store.ListUploads(r.Context(), p.Org.ID, uploadsShown)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	waiting := 0
	for _, x := range ups {
		if x.Status == margen.UploadChecking || x.Status == margen.UploadChecked {
			waiting++
		}
	}
	if waiting >= maxWaiting {
		d.FileErr = p.T("ops.import.error.too_many", "n", maxWaiting)
		s.renderImports(w, r, http.StatusTooManyRequests, p, d, ef)
		return
	}
	u := &margen.Upload{ID: margen.NewID("upl"), OrgID: p.Org.ID, MemberID: p.Member.ID, Kind: kind, FileName: name, Data: data,
		CreatedAt: s.clock.Now()}
	if err := s.store.CreateUpload(r.Context(), u, importer.CheckJob(u)); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("import uploaded", "org", p.Org.Slug, "member", p.Member.Login, "upload", u.ID, "kind", kind, "bytes", len(data))
	http.Redirect(w, r, "/desk/imports/"+u.ID, http.StatusSeeOther)
}

// uploadError is a problem with an upload form: its catalogue key.
type uploadError string

func (e uploadError) Error() string { return string(e) }

// readUpload reads the upload form (kind and file) within maxUpload.
func readUpload(w http.ResponseWriter, r *http.Request) (kind, name string, data []byte, err error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		return "", "", nil, uploadError("ops.import.error.form")
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return kind, "", nil, formErr(err)
		}
		switch part.FormName() {
		case "kind":
			b, err := io.ReadAll(io.LimitReader(part, 64))
			if err != nil {
				return kind, "", nil, formErr(err)
			}
			kind = string(b)
		case "file":
			if data != nil {
				return kind, "", nil, uploadError("ops.import.error.form")
			}
			name = fileName(part)
			data, err = io.ReadAll(io.LimitReader(part, maxUpload+1))
			if err != nil {
				return kind, "", nil, formErr(err)
			}
			if len(data) > maxUpload {
				return kind, "", nil, uploadError("ops.import.error.too_large")
			}
		}
		part.Close()
	}
	switch {
	case !slices.Contains(importer.Kinds(), kind):
		return "", "", nil, uploadError("ops.import.error.kind")
	case len(data) == 0:
		return kind, "", nil, uploadError("ops.import.error.empty")
	}
	return kind, name, data, nil
}

func formErr(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return uploadError("ops.import.error.too_large")
	}
	return uploadError("ops.import.error.form")
}

// fileName is the uploaded file's base name, made safe to show: valid
// UTF-8 without control characters, at most maxFileName characters.
func fileName(part *multipart.Part) string {
	n := filepath.Base(strings.ReplaceAll(part.FileName(), `\`, "/"))
	n = strings.ToValidUTF8(n, "")
	n = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, n)
	if utf8.RuneCountInString(n) > maxFileName {
		n = string([]rune(n)[:maxFileName])
	}
	if n == "" || n == "." || n == "/" {
		n = "import.csv"
	}
	return n
}

type uploadData struct {
	U        *margen.Upload
	Report   *importer.Report
	Errors   []importer.LineError // the bad lines shown
	More     int                  // problems not shown
	Problem  string
	Running  bool
	Done     int
	Total    int
	Writes   int // records the import writes (or would write): new and updated
	Confirm  bool
	Progress bool // the import's progress is known
}

// uploadPage is an upload's state: its check's report and the
// confirmation, then the import's progress and result. While a job runs,
// the page polls its "status" block (htmx, every second; without
// JavaScript a refresh does the same).
func (s *server) uploadPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "ops.import.title", nil)
	u, err := s.store.GetUpload(r.Context(), p.Org.ID, r.PathValue("id"), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.uploadData(p, u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = d
	block := ""
	if r.Header.Get("HX-Request") == "true" {
		block = "upload_status"
	}
	s.render(w, r, http.StatusOK, "import", block, p)
}

func (s *server) uploadData(p *page, u *margen.Upload) (*uploadData, error) {
	d := &uploadData{U: u, Running: u.Status == margen.UploadChecking || u.Status == margen.UploadImporting,
		Done: u.Done, Total: u.Total}
	rep, err := importer.DecodeReport(u.Report)
	if err != nil {
		return nil, err
	}
	if rep != nil {
		rep.Translate(func(key string, args map[string]any) string {
			return p.cat.Format(p.Lang, p.Org.Currency, key, args)
		})
		d.Report = rep
		d.Errors = rep.Errors[:min(len(rep.Errors), errorsShown)]
		d.More = len(rep.Errors) - len(d.Errors)
		d.Writes = rep.New + rep.Updated
		d.Confirm = u.Status == margen.UploadChecked && rep.New+rep.Updated > 0
	}
	if key, args := importer.DecodeProblem(u.Problem); key != "" {
		d.Problem = p.cat.Format(p.Lang, p.Org.Currency, key, args)
	}
	if u.Status == margen.UploadImporting {
		if done, total, ok := s.imports.Progress(u.ID); ok {
			d.Done, d.Total = done, total
		}
	}
	d.Progress = d.Total > 0
	return d, nil
}

// confirmUpload starts the import of a checked upload: all or nothing
// when its check found no bad line, else the good lines only (the page
// says which before the manager confirms).
func (s *server) confirmUpload(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	p := s.newPage(r, "ops.import.title", nil)
	u, err := s.store.GetUpload(r.Context(), p.Org.ID, r.PathValue("id"), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rep, err := importer.DecodeReport(u.Report)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	skip := r.PostFormValue("skip_bad") == "1"
	if u.Status != margen.UploadChecked || rep == nil || rep.Bad > 0 && !skip {
		d, err := s.uploadData(p, u)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Error = p.T("ops.import.error.not_confirmable")
		p.Data = d
		s.render(w, r, http.StatusConflict, "import", "", p)
		return
	}
	ok, err := s.store.ConfirmUpload(r.Context(), p.Org.ID, u.ID, skip, s.clock.Now(), importer.ApplyJob(u))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ok {
		s.log.Info("import confirmed", "org", p.Org.Slug, "member", p.Member.Login, "upload", u.ID, "skip_bad", skip)
	}
	http.Redirect(w, r, "/desk/imports/"+u.ID, http.StatusSeeOther)
}

// exportDownload streams an export of the period, as GET
// /api/v1/exports/{kind} does.
func (s *server) exportDownload(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "ops.imports.title", nil)
	q := r.URL.Query()
	ef := exportForm{Kind: q.Get("kind"), Format: q.Get("format"), Since: q.Get("since"), Until: q.Get("until")}
	for _, v := range []string{ef.Kind, ef.Format, ef.Since, ef.Until} {
		if len(v) > 64 || !utf8.ValidString(v) {
			s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
			return
		}
	}
	err := export.Check(ef.Kind, ef.Format)
	if err == nil && !slices.Contains(export.Kinds(), ef.Kind) {
		err = margen.Invalid("kind", "ops.export.error.kind")
	}
	loc := p.Org.Location()
	var since, until time.Time
	if err == nil {
		since, until, err = export.ParsePeriod(ef.Since, ef.Until, loc)
	}
	if err != nil {
		ef.Error = p.message(err)
		if ef.Error == "" {
			ef.Error = p.T("ops.export.error.kind")
		}
		s.renderImports(w, r, http.StatusBadRequest, p, &importsData{Kind: margen.ImportCustomers}, ef)
		return
	}
	ctype := "text/csv; charset=utf-8"
	if ef.Format == export.JSONL {
		ctype = "application/jsonl; charset=utf-8"
	}
	period := ""
	if !since.IsZero() {
		period += "-from-" + since.In(loc).Format("20060102")
	}
	if !until.IsZero() {
		period += "-to-" + until.In(loc).Format("20060102")
	}
	// The slug, kind and format are [a-z0-9-]: no quoting rules needed.
	name := fmt.Sprintf("%s-%s%s.%s", p.Org.Slug, ef.Kind, period, ef.Format)
	dw := &download{w: w, rc: http.NewResponseController(w), start: func() {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}}
	dw.rc.SetWriteDeadline(time.Now().Add(exportDeadline))
	n, err := export.Write(r.Context(), s.store, dw, export.Options{Kind: ef.Kind, Format: ef.Format, Org: p.Org, Since: since, Until: until})
	if err != nil {
		if !dw.started {
			s.fail(w, r, err)
			return
		}
		// Part of the file is out: cut the response, so the browser shows
		// a failed download rather than a short file that looks complete.
		s.log.Error("export failed mid-stream", "kind", ef.Kind, "rows", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !dw.started {
		dw.start()
	}
	// Who took which records out: exports carry personal data.
	s.log.Info("export", "org", p.Org.Slug, "member", p.Member.Login, "kind", ef.Kind, "format", ef.Format,
		"since", ef.Since, "until", ef.Until, "rows", n)
}

// download sends the headers on the first write and pushes the write
// deadline forward on every write: a long download lives as long as the
// client keeps reading.
type download struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	start   func()
	started bool
}

func (d *download) Write(b []byte) (int, error) {
	if !d.started {
		d.started = true
		d.start()
	}
	d.rc.SetWriteDeadline(time.Now().Add(exportDeadline))
	return d.w.Write(b)
}
