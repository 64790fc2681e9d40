package margen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// A customer's personal data can be exported and erased (issue 9,
// "Privacy"). Erasure keeps every row, score, amount, outcome, time,
// member and team, so statistics still count the customer's acts and
// answers; it empties the customer's name, contact and tags, replaces
// their reference (which may be their name or phone) by their id, and
// empties the free text written about them: the reasons of their
// decisions and acts, the notes of their acts' reactions, what they wanted
// and the notes of their refusals, the description and answers of their
// approval requests, the comments of their survey answers and what was
// done in their follow-up cases. The rule is pure (EraseCustomer); the
// store reads ErasureState under the organisation's lock and applies the
// write-set with one audit entry (customer.erase) that commits to every
// row it changed, so the chain verifies after it: the last commitment is
// the truth.

// ErasureState is what an erasure reads under the organisation's lock: the
// customer and the ids of the rows written about them, per sealed table.
// Idempotency holds the organisation's stored API answers and Uploads its
// stored import files (id and content), which may quote the customer.
type ErasureState struct {
	Customer Customer
	Rows     map[string][]string // sealed table -> ids of the customer's rows
	// Idempotency and Uploads are candidates: the rule keeps the ones that
	// mention the customer.
	Idempotency []Idempotency
	Uploads     []Upload
	// Emails are the survey links' email sends to the customer (a link
	// made for them, or their contact as the address).
	Emails []string
}

// ErasureClear empties columns of rows of one table.
type ErasureClear struct {
	Table string
	Cols  []string
	IDs   []string
}

// Erasure is the answer of an erasure: the customer, whether this call
// erased them (false: they were erased already and nothing changed) and how
// many rows of each table it changed.
type Erasure struct {
	CustomerID string         `json:"customer_id"`
	Erased     bool           `json:"erased"`
	Rows       map[string]int `json:"rows"`
}

// ErasureWrite is what the store applies: the customer as it is to be
// stored, the columns to empty, the idempotency records and uploads to
// delete, and the audit entry (nil: nothing to do).
type ErasureWrite struct {
	Customer    Customer
	Clear       []ErasureClear
	Idempotency []IdemKey
	Uploads     []string
	// Emails are the sends whose address, token and error are emptied (a
	// send still waiting is given up).
	Emails []string
	Audit  *AuditEntry
	Result Erasure
}

// erasedText lists, per sealed table, the free-text columns an erasure
// empties, in the order tables are applied.
var erasedText = []struct {
	table string
	cols  []string
}{
	{"decisions", []string{"reason"}},
	{"acts", []string{"reason"}},
	{"reactions", []string{"note"}},
	{"refusals", []string{"wanted", "note"}},
	{"approvals", []string{"description", "comment"}},
	{"approval_events", []string{"comment"}},
	{"survey_answers", []string{"comment"}},
	{"survey_cases", []string{"action"}},
}

// ErasedTables are the sealed tables an erasure reads the customer's rows
// of (besides customers), in order.
func ErasedTables() []string {
	out := make([]string, len(erasedText))
	for i, t := range erasedText {
		out[i] = t.table
	}
	return out
}

// Erased reports whether the customer has been erased: an erased customer's
// reference is its own id, which no reference of a live customer can be
// (the id is a hash of the reference).
func (c Customer) Erased() bool { return c.ID != "" && c.Ref == c.ID }

// ErasureAudit is the audit data of customer.erase: counts only, no erased
// data.
type ErasureAudit struct {
	Rows map[string]int `json:"rows"`
}

// EraseCustomer is the erasure rule: from what was read under the lock, the
// write-set. A customer erased already gives a write with no entry (a
// no-op the caller reports as such).
func EraseCustomer(st *ErasureState, actor string, at time.Time) (*ErasureWrite, error) {
	c := st.Customer
	w := &ErasureWrite{Customer: c, Result: Erasure{CustomerID: c.ID, Rows: map[string]int{}}}
	if c.Erased() {
		return w, nil
	}
	needles := c.personal()
	c.Name, c.Contact, c.Tags, c.Ref = "", "", []string{}, c.ID
	w.Customer = c
	w.Result.Erased = true
	w.Result.Rows["customers"] = 1
	ids := map[string]bool{c.ID: true}
	for _, t := range erasedText {
		rows := st.Rows[t.table]
		if len(rows) == 0 {
			continue
		}
		w.Clear = append(w.Clear, ErasureClear{Table: t.table, Cols: t.cols, IDs: rows})
		w.Result.Rows[t.table] = len(rows)
		for _, id := range rows {
			ids[id] = true
		}
	}
	// An answer stored for a retry quotes the request's result (a
	// decision with its reason, a reaction with its note): any that names
	// the customer or one of their rows goes.
	for _, rec := range st.Idempotency {
		if mentions(rec.Response, needles, ids) {
			w.Idempotency = append(w.Idempotency, IdemKey{OrgID: rec.OrgID, MemberID: rec.MemberID, Key: rec.Key})
		}
	}
	for _, u := range st.Uploads {
		if mentions(u.Data, needles, nil) || mentions(u.Report, needles, nil) || mentions([]byte(u.FileName), needles, nil) {
			w.Uploads = append(w.Uploads, u.ID)
		}
	}
	if n := len(w.Idempotency); n > 0 {
		w.Result.Rows["idempotency"] = n
	}
	if n := len(w.Uploads); n > 0 {
		w.Result.Rows["uploads"] = n
	}
	if n := len(st.Emails); n > 0 {
		w.Emails = st.Emails
		w.Result.Rows["survey_emails"] = n
	}
	data, err := json.Marshal(ErasureAudit{Rows: w.Result.Rows})
	if err != nil {
		return nil, err
	}
	w.Audit = &AuditEntry{OrgID: c.OrgID, At: at, Actor: actor, Action: ActionCustomerErase, Subject: c.ID, Data: data}
	return w, nil
}

// personal is the customer's personal strings as they may be quoted
// elsewhere (JSON-escaped too), the short and empty ones left out: a
// two-letter name would match half of every answer.
func (c *Customer) personal() [][]byte {
	var out [][]byte
	for _, s := range []string{c.Name, c.Contact, c.Ref} {
		if len(s) < 3 {
			continue
		}
		out = append(out, []byte(s))
		if q, err := json.Marshal(s); err == nil && len(q) > len(s)+2 {
			out = append(out, q[1:len(q)-1])
		}
		// As an encoder that escapes every non-ASCII letter writes it.
		var esc strings.Builder
		for _, r := range s {
			if r < utf8.RuneSelf {
				esc.WriteRune(r)
			} else {
				fmt.Fprintf(&esc, "\\u%04x", r)
			}
		}
		if esc.Len() != len(s) {
			out = append(out, []byte(esc.String()))
		}
	}
	return out
}

// mentions reports whether b holds one of the needles, or one of ids as a
// JSON string.
func mentions(b []byte, needles [][]byte, ids map[string]bool) bool {
	if len(b) == 0 {
		return false
	}
	for _, n := range needles {
		if bytes.Contains(b, n) {
			return true
		}
	}
	if len(ids) == 0 {
		return false
	}
	// Every quoted string of the JSON: ids are quoted and never escaped.
	for rest := b; ; {
		i := bytes.IndexByte(rest, '"')
		if i < 0 {
			return false
		}
		rest = rest[i+1:]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return false
		}
		if ids[string(rest[:j])] {
			return true
		}
		rest = rest[j+1:]
	}
}

// MaxExportRows bounds each section of a customer's export: past it the
// section ends and the export lists the section under "truncated".
const MaxExportRows = 100_000

// PersonalExport writes a customer's export as one JSON object, streamed:
// {"format":"margen.customer-export/1","exported_at":…,"customer":{…},
// "decisions":[…], …, "truncated":[…]}. Add takes the sections in order
// (as the store's ExportCustomer feeds them); Close ends the object.
type PersonalExport struct {
	w         io.Writer
	section   string
	n         int
	truncated []string
	at        time.Time
	begun     bool
	err       error
}

// NewPersonalExport starts an export on w. Nothing is written before the
// first Add, so a customer that is not found can still be answered 404.
func NewPersonalExport(w io.Writer, at time.Time) *PersonalExport {
	return &PersonalExport{w: w, at: at}
}

func (e *PersonalExport) begin() {
	if !e.begun {
		e.begun = true
		e.write(`{"format":"margen.customer-export/1","exported_at":`)
		e.value(e.at.UTC())
	}
}

func (e *PersonalExport) write(s string) {
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

func (e *PersonalExport) value(v any) {
	if e.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		e.err = err
		return
	}
	_, e.err = e.w.Write(b)
}

// Add writes one row of a section ("customer" is a single object, every
// other section an array).
func (e *PersonalExport) Add(section string, v any) error {
	e.begin()
	if section != e.section {
		e.endSection()
		e.section, e.n = section, 0
		e.write(",")
		e.value(section)
		e.write(":")
		if section != "customer" {
			e.write("[")
		}
	}
	switch {
	case section == "customer":
	case e.n == MaxExportRows:
		e.truncated = append(e.truncated, section)
		e.n++
		return e.err
	case e.n > MaxExportRows:
		return e.err
	case e.n > 0:
		e.write(",")
	}
	e.n++
	if e.n <= MaxExportRows || section == "customer" {
		e.value(v)
	}
	return e.err
}

func (e *PersonalExport) endSection() {
	if e.section != "" && e.section != "customer" {
		e.write("]")
	}
}

// Close ends the export.
func (e *PersonalExport) Close() error {
	e.begin()
	e.endSection()
	e.section = ""
	e.write(`,"truncated":`)
	if e.truncated == nil {
		e.truncated = []string{}
	}
	e.value(e.truncated)
	e.write("}\n")
	return e.err
}
