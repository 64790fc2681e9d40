package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/margenhq/margen"
)

// Kinds of export.
const (
	Decisions = "decisions"
	Acts      = "acts"
	Reactions = "reactions"
	Refusals  = "refusals"
	Approvals = "approvals"
	Audit     = "audit"
)

// Formats.
const (
	CSV   = "csv"
	JSONL = "jsonl"
)

// Kinds lists the kinds of export.
func Kinds() []string { return []string{Decisions, Acts, Reactions, Refusals, Approvals, Audit} }

// Formats lists the formats.
func Formats() []string { return []string{CSV, JSONL} }

// colType says how a column is written.
type colType int

const (
	text       colType = iota // escaped in CSV, a JSON string
	integer                   // a decimal number, never escaped
	boolean                   // true or false
	rawJSON                   // JSON text (the audit entry's data): a JSON value in JSON Lines
	optInteger                // a decimal number or empty (null in JSON Lines), never escaped
)

type column struct {
	name string
	typ  colType
}

var columns = map[string][]column{
	Decisions: {{"id", text}, {"created_at", text}, {"member_id", text}, {"member_login", text}, {"customer_id", text},
		{"customer_ref", text}, {"action", text}, {"amount", integer}, {"currency", text}, {"outcome", text},
		{"rule", text}, {"policy_version", integer}, {"flagged", boolean}, {"reason", text},
		{"explanation_code", text}, {"act_id", text}, {"approval_id", text}, {"refusal_id", text}, {"team", text}},
	Acts: {{"id", text}, {"created_at", text}, {"decision_id", text}, {"member_id", text}, {"member_login", text},
		{"customer_id", text}, {"customer_ref", text}, {"action", text}, {"amount", integer}, {"currency", text},
		{"reason", text}, {"flagged", boolean}, {"team", text}},
	Reactions: {{"id", text}, {"created_at", text}, {"act_id", text}, {"source", text}, {"sentiment", text},
		{"note", text}, {"member_id", text}, {"member_login", text}, {"customer_ref", text}, {"score", optInteger}},
	Refusals: {{"id", text}, {"created_at", text}, {"decision_id", text}, {"member_id", text}, {"member_login", text},
		{"customer_id", text}, {"customer_ref", text}, {"action", text}, {"amount", integer}, {"wanted", text},
		{"reason", text}, {"rule", text}, {"customer_left", text}, {"note", text}},
	Approvals: {{"id", text}, {"created_at", text}, {"decision_id", text}, {"kind", text}, {"member_id", text},
		{"member_login", text}, {"customer_id", text}, {"customer_ref", text}, {"action", text}, {"amount", integer},
		{"description", text}, {"approver_role", text}, {"level", integer}, {"status", text}, {"due_at", text},
		{"decided_by", text}, {"decided_at", text}, {"comment", text}, {"act_id", text}},
	Audit: {{"seq", integer}, {"at", text}, {"actor", text}, {"action", text}, {"subject", text}, {"data", rawJSON},
		{"prev_hash", text}, {"hash", text}},
}

// Columns returns the column names of a kind, in order, and which of them
// are integers (written as plain numbers in CSV).
func Columns(kind string) (names []string, numeric map[string]bool) {
	numeric = map[string]bool{}
	for _, c := range columns[kind] {
		names = append(names, c.name)
		if c.typ == integer {
			numeric[c.name] = true
		}
	}
	return names, numeric
}

// Options configure Write.
type Options struct {
	Kind   string
	Format string
	Org    *margen.Org
	// Since and Until bound the period: [Since, Until); zero is open.
	Since, Until time.Time
	// Progress, when set, is called every ProgressEvery rows and at the
	// end with the number of rows written.
	Progress func(rows int)
}

// ProgressEvery is how many rows pass between two Progress calls.
const ProgressEvery = 10_000

// Check validates the kind and format.
func Check(kind, format string) error {
	if _, ok := columns[kind]; !ok {
		return margen.Invalid("kind", "error.invalid_value", "field", "kind", "allowed", strings.Join(Kinds(), ", "))
	}
	if format != CSV && format != JSONL {
		return margen.Invalid("format", "error.invalid_value", "field", "format", "allowed", "csv, jsonl")
	}
	return nil
}

// Write streams the export to w and returns how many rows it wrote. On an
// error part of the export may have been written.
func Write(ctx context.Context, st margen.ExportStore, w io.Writer, opt Options) (int, error) {
	if err := Check(opt.Kind, opt.Format); err != nil {
		return 0, err
	}
	loc := opt.Org.Location()
	cols := columns[opt.Kind]
	var enc encoder
	if opt.Format == CSV {
		enc = newCSV(w, cols)
	} else {
		enc = newJSONL(w, cols)
	}
	if err := enc.header(); err != nil {
		return 0, err
	}
	rows := 0
	vals := make([]string, len(cols))
	emit := func() error {
		if err := enc.row(vals); err != nil {
			return err
		}
		rows++
		if opt.Progress != nil && rows%ProgressEvery == 0 {
			opt.Progress(rows)
		}
		return nil
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format(time.RFC3339Nano)
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	f := margen.ExportFilter{OrgID: opt.Org.ID, Since: opt.Since, Until: opt.Until}
	var err error
	switch opt.Kind {
	case Decisions:
		err = st.ExportDecisions(ctx, f, func(x *margen.Decision, n margen.Names) error {
			copy(vals, []string{x.ID, ts(x.CreatedAt), x.MemberID, n.MemberLogin, x.CustomerID, n.CustomerRef, x.Action,
				num(x.Amount), x.Currency, x.Outcome, x.Rule, num(int64(x.PolicyVersion)), strconv.FormatBool(x.Flagged),
				x.Reason, x.Explanation.Code, x.ActID, x.ApprovalID, x.RefusalID, x.Team})
			return emit()
		})
	case Acts:
		err = st.ExportActs(ctx, f, func(x *margen.Act, n margen.Names) error {
			copy(vals, []string{x.ID, ts(x.CreatedAt), x.DecisionID, x.MemberID, n.MemberLogin, x.CustomerID, n.CustomerRef,
				x.Action, num(x.Amount), x.Currency, x.Reason, strconv.FormatBool(x.Flagged), x.Team})
			return emit()
		})
	case Reactions:
		err = st.ExportReactions(ctx, f, func(x *margen.Reaction, n margen.Names) error {
			score := ""
			if x.Score != nil {
				score = strconv.Itoa(*x.Score)
			}
			copy(vals, []string{x.ID, ts(x.CreatedAt), x.ActID, x.Source, x.Sentiment, x.Note, x.MemberID, n.MemberLogin,
				n.CustomerRef, score})
			return emit()
		})
	case Refusals:
		err = st.ExportRefusals(ctx, f, func(x *margen.Refusal, n margen.Names) error {
			copy(vals, []string{x.ID, ts(x.CreatedAt), x.DecisionID, x.MemberID, n.MemberLogin, x.CustomerID, n.CustomerRef,
				x.Action, num(x.Amount), x.Wanted, x.ReasonKind, x.Rule, x.Left, x.Note})
			return emit()
		})
	case Approvals:
		err = st.ExportApprovals(ctx, f, func(x *margen.Approval, n margen.Names) error {
			decided := ""
			if x.DecidedAt != nil {
				decided = ts(*x.DecidedAt)
			}
			copy(vals, []string{x.ID, ts(x.CreatedAt), x.DecisionID, x.Kind, x.MemberID, n.MemberLogin, x.CustomerID,
				n.CustomerRef, x.Action, num(x.Amount), x.Description, x.ApproverRole, num(int64(x.Level)), x.Status,
				ts(x.DueAt), x.DecidedBy, decided, x.Comment, x.ActID})
			return emit()
		})
	case Audit:
		err = st.ExportAudit(ctx, f, func(x *margen.AuditEntry) error {
			copy(vals, []string{num(x.Seq), ts(x.At), x.Actor, string(x.Action), x.Subject, string(x.Data), x.PrevHash, x.Hash})
			return emit()
		})
	}
	if err != nil {
		return rows, err
	}
	if err := enc.flush(); err != nil {
		return rows, err
	}
	if opt.Progress != nil {
		opt.Progress(rows)
	}
	return rows, nil
}

type encoder interface {
	header() error
	row(vals []string) error
	flush() error
}

// Escape makes a text cell safe to open in a spreadsheet: a cell that
// begins with =, +, -, @, a tab or a carriage return gets a leading
// apostrophe, so it is shown as text and never evaluated as a formula.
func Escape(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

type csvEncoder struct {
	w    *csv.Writer
	cols []column
	rec  []string
}

func newCSV(w io.Writer, cols []column) *csvEncoder {
	return &csvEncoder{w: csv.NewWriter(w), cols: cols, rec: make([]string, len(cols))}
}

func (e *csvEncoder) header() error {
	for i, c := range e.cols {
		e.rec[i] = c.name
	}
	return e.w.Write(e.rec)
}

func (e *csvEncoder) row(vals []string) error {
	for i, c := range e.cols {
		if c.typ == text || c.typ == rawJSON {
			e.rec[i] = Escape(vals[i])
		} else {
			e.rec[i] = vals[i]
		}
	}
	return e.w.Write(e.rec)
}

func (e *csvEncoder) flush() error {
	e.w.Flush()
	return e.w.Error()
}

type jsonlEncoder struct {
	w    *bufio.Writer
	cols []column
	buf  []byte
}

func newJSONL(w io.Writer, cols []column) *jsonlEncoder {
	return &jsonlEncoder{w: bufio.NewWriterSize(w, 64<<10), cols: cols}
}

func (e *jsonlEncoder) header() error { return nil }

func (e *jsonlEncoder) row(vals []string) error {
	b := append(e.buf[:0], '{')
	for i, c := range e.cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c.name)
		b = append(b, ':')
		v := vals[i]
		switch {
		case c.typ == integer, c.typ == boolean, c.typ == optInteger && v != "":
			b = append(b, v...)
		case c.typ == optInteger:
			b = append(b, "null"...)
		case c.typ == rawJSON && v != "" && json.Valid([]byte(v)):
			b = append(b, v...)
		case c.typ == rawJSON:
			b = append(b, "null"...)
		default:
			b = appendString(b, v)
		}
	}
	b = append(b, '}', '\n')
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

func (e *jsonlEncoder) flush() error { return e.w.Flush() }

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
