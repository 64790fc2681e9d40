package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/export"
	"github.com/margenhq/margen/importer"
)

// csvTypes are the Content-Types an import upload may have: browsers send
// Excel's CSV files as application/vnd.ms-excel.
var csvTypes = []string{"text/csv", "text/plain", "application/csv", "application/vnd.ms-excel"}

// maxImportBody bounds an upload: about 150,000 customer lines. An import
// holds the file and its parsed lines in memory (a 5 MB file of 100,000
// customers peaks at about 290 MB resident in margen import), so the
// server takes less than the CLI (importer.MaxSize); larger files go
// through margen import.
const maxImportBody = 8 << 20

// transferDeadline is how long a slow client may take over each part of an
// upload or a download: imports and exports outlive the server's overall
// read and write timeouts as long as the bytes keep moving.
const transferDeadline = time.Minute

// queryBool reads an optional boolean query parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, margen.Invalid(name, "error.invalid_value", "field", name, "allowed", "1, 0, true, false")
	}
	return b, nil
}

// importFile is POST /api/v1/imports/{kind}: the same import as the CLI,
// from a CSV body. The answer is the report; a file refused as a whole
// (a bad line without skip_bad) is a 400 problem listing every bad line,
// with the report in its "report" member.
func (s *server) importFile(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	kind := r.PathValue("kind")
	if !slices.Contains(importer.Kinds(), kind) {
		s.problem(w, r, margen.NotFound("import"))
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !slices.Contains(csvTypes, mt) {
		s.problem(w, r, margen.Invalid("Content-Type", "error.import_content_type"))
		return
	}
	dry, err := queryBool(r, "dry_run")
	if err != nil {
		s.problem(w, r, err)
		return
	}
	skip, err := queryBool(r, "skip_bad")
	if err != nil {
		s.problem(w, r, err)
		return
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(2 * transferDeadline))
	body, err := readBody(w, r, maxImportBody)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	rep, err := importer.Run(r.Context(), s.store, body, importer.Options{Kind: kind, Org: st.org, Actor: st.member.ID,
		ActorAccess: st.member.Access, DryRun: dry, SkipBad: skip, Now: s.clock.Now()})
	if rep != nil {
		rep.Translate(func(key string, args map[string]any) string {
			return s.cat.Format(lang(r), st.org.Currency, key, args)
		})
	}
	if err != nil {
		var me *margen.Error
		if rep != nil && errors.As(err, &me) {
			list := make([]ProblemError, 0, len(rep.Errors))
			for _, e := range rep.Errors {
				list = append(list, ProblemError{Line: e.Line, Path: e.Field, Message: e.Message})
			}
			s.problem(w, r, &detailedError{err: me, list: list, report: rep})
			return
		}
		s.problem(w, r, err)
		return
	}
	s.log.Info("import", "request_id", reqID(r), "org", st.org.Slug, "member", st.member.Login, "kind", kind,
		"lines", rep.Lines, "new", rep.New, "updated", rep.Updated, "unchanged", rep.Unchanged, "bad", rep.Bad,
		"dry_run", dry, "applied", rep.Applied)
	writeJSON(w, http.StatusOK, rep)
}

// exportRecords is GET /api/v1/exports/{kind}: the period's records as a
// CSV or JSON Lines download, streamed.
func (s *server) exportRecords(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	kind := r.PathValue("kind")
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = export.CSV
	}
	if !slices.Contains(export.Kinds(), kind) {
		s.problem(w, r, margen.NotFound("export"))
		return
	}
	if err := export.Check(kind, format); err != nil {
		s.problem(w, r, err)
		return
	}
	since, until, err := export.ParsePeriod(q.Get("since"), q.Get("until"), st.org.Location())
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ctype := "text/csv; charset=utf-8"
	if format == export.JSONL {
		ctype = "application/jsonl; charset=utf-8"
	}
	period := ""
	if !since.IsZero() {
		period += "-from-" + since.In(st.org.Location()).Format("20060102T1504")
	}
	if !until.IsZero() {
		period += "-to-" + until.In(st.org.Location()).Format("20060102T1504")
	}
	// The slug and kind are [a-z0-9-]: the file name needs no quoting rules.
	name := fmt.Sprintf("%s-%s%s.%s", st.org.Slug, kind, period, format)
	dw := &downloadWriter{w: w, rc: http.NewResponseController(w), start: func() {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}}
	// The first rows may take a while (a long period on a busy database).
	dw.rc.SetWriteDeadline(time.Now().Add(transferDeadline))
	n, err := export.Write(r.Context(), s.store, dw, export.Options{Kind: kind, Format: format, Org: st.org,
		Since: since, Until: until})
	if err != nil {
		if !dw.started {
			s.problem(w, r, err)
			return
		}
		// Part of the file is out: cut the response so the client sees a
		// broken download instead of a short file that looks complete.
		s.log.Error("export failed mid-stream", "request_id", reqID(r), "kind", kind, "rows", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !dw.started {
		dw.start() // an empty JSON Lines file
	}
	// Who took which records out: exports carry personal data.
	s.log.Info("export", "request_id", reqID(r), "org", st.org.Slug, "member", st.member.Login, "kind", kind,
		"format", format, "since", q.Get("since"), "until", q.Get("until"), "rows", n)
}

// downloadWriter sends the headers on the first write and, on every
// write, pushes the write deadline forward: a long download lives as long
// as the client keeps reading.
type downloadWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	start   func()
	started bool
}

func (d *downloadWriter) Write(b []byte) (int, error) {
	if !d.started {
		d.started = true
		d.start()
	}
	d.rc.SetWriteDeadline(time.Now().Add(transferDeadline))
	return d.w.Write(b)
}
