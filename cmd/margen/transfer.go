package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/export"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/importer"
)

// progress shows how a long command advances on standard error: a
// progress bar when it is a terminal, otherwise a plain line now and then
// (logs and CI keep a readable record).
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	label string
	total int // -1: unknown
	last  time.Time
	every time.Duration
	done  int // last count set
	shown int // last count printed (plain lines)
}

func (a *app) progress(label string, total int) *progress {
	p := &progress{w: a.stderr, label: label, total: total, every: 2 * time.Second}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription(label), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	return p
}

// set reports that done rows are finished.
func (p *progress) set(done int) {
	p.done = done
	if p.bar != nil {
		p.bar.Set(done)
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.line()
	}
}

func (p *progress) line() {
	p.shown = p.done
	if p.total >= 0 {
		fmt.Fprintf(p.w, "%s: %d/%d\n", p.label, p.done, p.total)
	} else {
		fmt.Fprintf(p.w, "%s: %d rows\n", p.label, p.done)
	}
}

// finish clears the bar, or prints the last count if it was not shown.
func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		return
	}
	if p.done != p.shown {
		p.line()
	}
}

// catalogue is loaded once, on first use.
var catalogue = sync.OnceValues(i18n.New)

// english renders a catalogue message in English for the terminal.
func english(key string, args map[string]any) string {
	cat, err := catalogue()
	if err != nil || !cat.Has("en", key) {
		return key
	}
	return cat.T("en", key, args)
}

func cmdImport(kind string) func(ctx context.Context, a *app, args []string) error {
	return func(ctx context.Context, a *app, args []string) error {
		cfg, err := a.config()
		if err != nil {
			return err
		}
		fs := a.flags("import "+kind, "FILE.csv", fmt.Sprintf(`Imports %s from a CSV file with a header line. Columns: %s
(required: the first; see docs/import-export.md for each column and its Spanish name).
The file may be UTF-8 (with or without a byte order mark) or Windows-1252
(Excel's "CSV (separated by semicolons)" in Spanish), separated by ; or ,.

Every line is checked before anything is written; every bad line is
reported as FILE:LINE: field: message. By default the import is all or
nothing: one bad line and nothing is written. --skip-bad imports the good
lines; --dry-run writes nothing and says what would change. Records are
matched by their key, so importing the same file again changes nothing.

Example:
  margen import %s --org la-brasa --dry-run %s.csv`, kind, strings.Join(importer.ColumnNames(kind), ", "), kind, kind))
		fs.dbFlag(&cfg)
		orgSlug := fs.String("org", "", "slug of the organisation (required)")
		dry := fs.Bool("dry-run", false, "check the file and report what would change, writing nothing")
		skip := fs.Bool("skip-bad", false, "import the good lines even if some are bad")
		fs.require("org")
		pos, err := fs.parse(args, 1)
		if err != nil {
			return err
		}
		path := pos[0]
		data, err := readLimited(path, importer.MaxSize)
		if err != nil {
			return err
		}
		st, org, err := openOrg(ctx, a, cfg, *orgSlug)
		if err != nil {
			return err
		}
		defer st.Close()
		var bar *progress
		rep, err := importer.Run(ctx, st, data, importer.Options{Kind: kind, Org: org, Actor: actor,
			ActorAccess: margen.AccessOwner, DryRun: *dry, SkipBad: *skip, Now: time.Now(),
			Progress: func(done, total int) {
				if bar == nil {
					bar = a.progress("importing "+kind, total)
				}
				bar.set(done)
			}})
		if bar != nil {
			bar.finish()
		}
		var me *margen.Error
		if rep == nil && errors.As(err, &me) && me.Field == "header" {
			fmt.Fprintf(a.stderr, "%s:1: header: %s\n", path, english(me.Key, me.Args))
			return exitError{"bad header"}
		}
		if rep == nil {
			return err
		}
		rep.Translate(english)
		for _, e := range rep.Errors {
			if e.Field != "" {
				fmt.Fprintf(a.stderr, "%s:%d: %s: %s\n", path, e.Line, e.Field, e.Message)
			} else {
				fmt.Fprintf(a.stderr, "%s:%d: %s\n", path, e.Line, e.Message)
			}
		}
		sep := rep.Separator
		fmt.Fprintf(a.stdout, "%s (%s, separator %q): %d lines: %d new, %d updated, %d unchanged, %d bad\n",
			path, rep.Charset, sep, rep.Lines, rep.New, rep.Updated, rep.Unchanged, rep.Bad)
		switch {
		case rep.DryRun:
			fmt.Fprintln(a.stdout, "dry run: nothing was written")
		case err != nil:
			fmt.Fprintf(a.stdout, "nothing was imported: %d lines have problems (fix them, or use --skip-bad to import the good lines)\n", rep.Bad)
			return exitError{"bad lines"}
		case rep.Applied && rep.Bad > 0:
			fmt.Fprintf(a.stdout, "imported into %s, skipping %d bad lines\n", org.Slug, rep.Bad)
		case rep.Applied:
			fmt.Fprintf(a.stdout, "imported into %s\n", org.Slug)
		default:
			fmt.Fprintln(a.stdout, "nothing to change")
		}
		return nil
	}
}

// readLimited reads a file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: the file is larger than %d MiB: split it", path, max>>20)
	}
	return data, nil
}

func cmdExport(kind string) func(ctx context.Context, a *app, args []string) error {
	return func(ctx context.Context, a *app, args []string) error {
		cfg, err := a.config()
		if err != nil {
			return err
		}
		names, _ := export.Columns(kind)
		fs := a.flags("export "+kind, "", fmt.Sprintf(`Writes the organisation's %s of a period to standard output (or --out) as
CSV or JSON Lines, streamed row by row. Columns: %s.

--since and --until take a date (2026-11-01, midnight) or a local date and
time (2026-11-01T08:00) in the organisation's time zone, or an RFC 3339
time; since is included, until is not. In CSV, a text cell beginning with
=, +, -, @, a tab or a carriage return gets a leading ' so a spreadsheet
never runs it as a formula; numbers stay numbers (see docs/import-export.md).

Example:
  margen export %s --org la-brasa --format csv --since 2026-11-01 --until 2026-12-01 > %s.csv`,
			kind, strings.Join(names, ", "), kind, kind))
		fs.dbFlag(&cfg)
		orgSlug := fs.String("org", "", "slug of the organisation (required)")
		format := fs.String("format", export.CSV, "csv or jsonl")
		since := fs.String("since", "", "start of the period (included)")
		until := fs.String("until", "", "end of the period (excluded)")
		out := fs.String("out", "", "file to write (default: standard output)")
		fs.require("org")
		if _, err := fs.parse(args, 0); err != nil {
			return err
		}
		if err := export.Check(kind, *format); err != nil {
			return fmt.Errorf("--format: %s", describe(err))
		}
		st, org, err := openOrg(ctx, a, cfg, *orgSlug)
		if err != nil {
			return err
		}
		defer st.Close()
		s, u, err := export.ParsePeriod(*since, *until, org.Location())
		var me *margen.Error
		if errors.As(err, &me) {
			return fmt.Errorf("--%s: %s", me.Field, english(me.Key, me.Args))
		}
		w := a.stdout
		if *out != "" {
			f, err := os.Create(*out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		bw := bufio.NewWriterSize(w, 256<<10)
		bar := a.progress("exporting "+kind, -1)
		n, err := export.Write(ctx, st, bw, export.Options{Kind: kind, Format: *format, Org: org, Since: s, Until: u,
			Progress: bar.set})
		bar.finish()
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return err
		}
		if f, ok := w.(*os.File); ok && *out != "" {
			if err := f.Close(); err != nil {
				return err
			}
		}
		fmt.Fprintf(a.stderr, "exported %d %s of %s\n", n, kind, org.Slug)
		return nil
	}
}
