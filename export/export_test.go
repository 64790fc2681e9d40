package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/export"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

var number = regexp.MustCompile(`^-?[0-9]+$`)

// Every CSV cell is safe to open in a spreadsheet: no text cell begins
// with =, +, -, @, a tab or a carriage return; integer columns hold plain
// numbers (a negative amount stays a number).
func TestCSVIsSafeInASpreadsheet(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			org, m, c := seedOrg(t, db, "safe")
			seedDecisions(t, db, org.ID, m.ID, c.ID, 100)
			var buf bytes.Buffer
			n, err := export.Write(context.Background(), db, &buf, export.Options{Kind: export.Decisions, Format: export.CSV, Org: org})
			if err != nil || n != 100 {
				t.Fatalf("wrote %d rows: %v", n, err)
			}
			recs, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			names, numeric := export.Columns(export.Decisions)
			if !slices.Equal(recs[0], names) || len(recs) != 101 {
				t.Fatalf("header %v, %d records", recs[0], len(recs))
			}
			escaped, negative := 0, 0
			for i, rec := range recs[1:] {
				for j, cell := range rec {
					col := names[j]
					if numeric[col] {
						if !number.MatchString(cell) {
							t.Errorf("row %d %s = %q: not a number", i+1, col, cell)
						}
						if strings.HasPrefix(cell, "-") {
							negative++
						}
						continue
					}
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Errorf("row %d %s = %q begins with a formula character", i+1, col, cell)
					}
					if strings.HasPrefix(cell, "'") {
						escaped++
					}
				}
				if rec[3] != "'@owner" || rec[5] != "'=cmd|' /C calc'!A0" {
					t.Errorf("row %d names %q %q, want the escaped login and reference", i+1, rec[3], rec[5])
				}
			}
			// The seeded values really were hostile: the escape did work.
			if escaped < 200 || negative == 0 {
				t.Errorf("%d escaped cells, %d negative amounts: the seed is not hostile enough", escaped, negative)
			}
		})
	}
}

func TestJSONLinesAndPeriodAndTenancy(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			org, m, c := seedOrg(t, db, "mine")
			other, om, oc := seedOrg(t, db, "theirs")
			seedDecisions(t, db, org.ID, m.ID, c.ID, 50)
			seedDecisions(t, db, other.ID, om.ID, oc.ID, 70)
			// 10 seconds of the period, in the organisation's time zone
			// (Bogotá, UTC-5): decisions 10 to 19.
			since, until, err := export.ParsePeriod("2026-11-01T00:00:10", "2026-11-01T05:00:20Z", org.Location())
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, err := export.Write(context.Background(), db, &buf, export.Options{Kind: export.Decisions, Format: export.JSONL,
				Org: org, Since: since, Until: until})
			if err != nil || n != 10 {
				t.Fatalf("wrote %d rows, want 10: %v", n, err)
			}
			sc := bufio.NewScanner(&buf)
			var ids []string
			for sc.Scan() {
				var row map[string]any
				if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				if _, ok := row["amount"].(float64); !ok {
					t.Errorf("amount %v is not a number", row["amount"])
				}
				if _, ok := row["flagged"].(bool); !ok {
					t.Errorf("flagged %v is not a boolean", row["flagged"])
				}
				if row["member_id"] != m.ID {
					t.Errorf("a row of another organisation: %v", row)
				}
				ids = append(ids, row["id"].(string))
				if at, _ := time.Parse(time.RFC3339, row["created_at"].(string)); at.Before(since) || !at.Before(until) {
					t.Errorf("created_at %v outside the period", row["created_at"])
				}
			}
			if !slices.IsSorted(ids) || len(ids) != 10 {
				t.Errorf("ids %v", ids)
			}
			// The other organisation sees its own 70.
			n, err = export.Write(context.Background(), db, io.Discard, export.Options{Kind: export.Decisions, Format: export.CSV, Org: other})
			if err != nil || n != 70 {
				t.Errorf("other organisation: %d rows, %v", n, err)
			}
			// A reaction's score is a number, or null when none was given.
			var at any = seedBase.UnixMicro()
			if db.Engine() == store.EnginePostgres {
				at = seedBase
			}
			if _, err := db.SQL().Exec(db.Rebind(`INSERT INTO acts (org_id, id, member_id, action, amount, currency, created_at)
				VALUES (?, 'act_scored', ?, 'cortesia', 1, 'COP', ?)`), org.ID, m.ID, at); err != nil {
				t.Fatal(err)
			}
			seven := 7
			for _, r := range []*margen.Reaction{
				{OrgID: org.ID, ActID: "act_scored", Source: margen.SourceEmployee, Sentiment: margen.SentimentPositive, MemberID: m.ID},
				{OrgID: org.ID, ActID: "act_scored", Source: margen.SourceCustomer, Sentiment: margen.SentimentPositive, Score: &seven},
			} {
				if err := db.RecordReaction(context.Background(), r, nil); err != nil {
					t.Fatal(err)
				}
			}
			buf.Reset()
			if _, err := export.Write(context.Background(), db, &buf, export.Options{Kind: export.Reactions, Format: export.JSONL, Org: org}); err != nil {
				t.Fatal(err)
			}
			var scores []any
			for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				var row map[string]any
				if err := json.Unmarshal(line, &row); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				scores = append(scores, row["score"])
			}
			if len(scores) != 2 || scores[0] != nil || scores[1] != 7.0 {
				t.Errorf("reaction scores %v, want [<nil> 7]", scores)
			}

			// The audit trail exports as JSON with its data embedded.
			buf.Reset()
			if _, err := export.Write(context.Background(), db, &buf, export.Options{Kind: export.Audit, Format: export.JSONL, Org: org}); err != nil {
				t.Fatal(err)
			}
			var first struct {
				Seq    int64          `json:"seq"`
				Action string         `json:"action"`
				Data   map[string]any `json:"data"`
			}
			if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &first); err != nil || first.Seq != 1 || first.Action != "org.create" || first.Data["slug"] != "mine" {
				t.Errorf("first audit line %+v, %v", first, err)
			}
		})
	}
}

// heapProbe is an io.Writer that discards what it gets and, every few
// writes, collects garbage and records the live heap.
type heapProbe struct {
	writes int
	peak   uint64
}

func (p *heapProbe) Write(b []byte) (int, error) {
	p.writes++
	if p.writes%64 == 0 {
		p.sample()
	}
	return len(b), nil
}

func (p *heapProbe) sample() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.peak = max(p.peak, ms.HeapAlloc)
}

// An export streams: the live heap while exporting many rows stays within
// a bound far below what the rows take, so collecting them would fail.
func TestExportStreamsWithFlatHeap(t *testing.T) {
	const n = 60_000
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			org, m, c := seedOrg(t, db, "flat")
			seedDecisions(t, db, org.ID, m.ID, c.ID, n)
			for _, format := range export.Formats() {
				p := &heapProbe{}
				p.sample()
				base := p.peak
				p.peak = 0
				rows, err := export.Write(context.Background(), db, p, export.Options{Kind: export.Decisions, Format: format, Org: org})
				if err != nil || rows != n {
					t.Fatalf("%s: %d rows, %v", format, rows, err)
				}
				growth := int64(p.peak) - int64(base)
				t.Logf("%s: %d rows, %d writes, live heap grew by at most %d KiB", format, rows, p.writes, growth>>10)
				// 60,000 decisions take well over 20 MiB as Go values
				// (and the output is bigger still); streaming keeps the
				// live heap within a few buffers.
				if growth > 4<<20 {
					t.Errorf("%s: the live heap grew by %d KiB while exporting %d rows: rows are being collected", format, growth>>10, rows)
				}
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	bogota, _ := time.LoadLocation("America/Bogota")
	for in, want := range map[string]time.Time{
		"2026-11-25":                time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC),
		"2026-11-25T10:00":          time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC),
		"2026-11-25T10:00:00-03:00": time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC),
		"2026-11-25T10:00:00Z":      time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	} {
		got, err := export.ParseTime("since", in, bogota)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := export.ParseTime("since", "yesterday", bogota); !margen.IsCode(err, margen.EINVALID) {
		t.Errorf("yesterday: %v", err)
	}
	if _, _, err := export.ParsePeriod("2026-11-25", "2026-11-24", bogota); !margen.IsCode(err, margen.EINVALID) {
		t.Errorf("until before since: %v", err)
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@a": "'@a", "\tx": "'\tx",
		"\rx": "'\rx", "a=b": "a=b", "": "", "'=x": "'=x"} {
		if got := export.Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every kind of export: one row whose every text column is hostile, and
// no CSV cell of any kind begins with a formula character unless its
// column is an integer one.
func TestEveryKindIsSafeInASpreadsheet(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			db := eng.Open(t)
			org, m, c := seedOrg(t, db, "kinds")
			seedDecisions(t, db, org.ID, m.ID, c.ID, 1)
			at := seedBase.Add(time.Hour)
			ts := func(t time.Time) any {
				if db.Engine() == "postgres" {
					return t
				}
				return t.UnixMicro()
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.SQL().Exec(db.Rebind(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			h := "=evil()"
			exec(`INSERT INTO acts (org_id, id, decision_id, member_id, customer_id, action, amount, currency, reason, flagged, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, org.ID, "+act", "-dec", m.ID, c.ID, "@act", -7, "+COP", h, true, ts(at))
			exec(`INSERT INTO reactions (org_id, id, act_id, source, sentiment, note, member_id, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, org.ID, "-rea", "+act", "\temployee", "\rpositive", h, m.ID, ts(at))
			exec(`INSERT INTO refusals (org_id, id, decision_id, member_id, customer_id, action, amount, wanted, reason_kind, rule, customer_left, note, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, org.ID, "@ref", "=dec", m.ID, c.ID, "-x", -1, h, "+kind", "@rule", "-left", h, ts(at))
			exec(`INSERT INTO approvals (org_id, id, decision_id, member_id, customer_id, action, amount, approver_role, sla_us, due_at,
				on_timeout, escalate_to, status, created_at, kind, description, level, decided_by, decided_at, comment, act_id)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, org.ID, "=apr", "+dec", m.ID, c.ID, "-a", -3,
				"@role", 60, ts(at), "=t", "+e", "-s", ts(at), "@k", h, 2, "=who", ts(at), h, "-act")
			exec(`INSERT INTO audit_log (org_id, seq, at, actor, action, subject, data, prev_hash, hash)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, org.ID, 1000, ts(at), "=actor", "+action", "-subject", "@data", "=p", "+h")
			for _, kind := range export.Kinds() {
				var buf bytes.Buffer
				n, err := export.Write(context.Background(), db, &buf, export.Options{Kind: kind, Format: export.CSV, Org: org})
				if err != nil || n == 0 {
					t.Fatalf("%s: %d rows, %v", kind, n, err)
				}
				recs, err := csv.NewReader(&buf).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				names, numeric := export.Columns(kind)
				escaped := 0
				for _, rec := range recs[1:] {
					for j, cell := range rec {
						switch {
						case numeric[names[j]] && !number.MatchString(cell):
							t.Errorf("%s.%s = %q: not a number", kind, names[j], cell)
						case !numeric[names[j]] && cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])):
							t.Errorf("%s.%s = %q begins with a formula character", kind, names[j], cell)
						case strings.HasPrefix(cell, "'"):
							escaped++
						}
					}
				}
				if escaped < 3 {
					t.Errorf("%s: only %d escaped cells: the seed is not hostile", kind, escaped)
				}
			}
		})
	}
}
