package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// A customer's personal data: export (every row that mentions them, in one
// snapshot) and erasure (the pure rule margen.EraseCustomer, applied under
// the organisation's lock with one audit entry that commits to every row
// it changed).

// customerRows are the queries of the ids of a customer's rows in each
// table an erasure clears, keeping only the rows with free text to clear
// (a row already empty is not rewritten). Each takes (org, customer) as
// many times as it has "?".
var customerRows = map[string]string{
	"decisions": "SELECT id FROM decisions WHERE org_id = ? AND customer_id = ? AND reason <> ''",
	"acts":      "SELECT id FROM acts WHERE org_id = ? AND customer_id = ? AND reason <> ''",
	"reactions": `SELECT id FROM reactions WHERE org_id = ? AND note <> '' AND act_id IN (` + customerActs + `)`,
	"refusals":  "SELECT id FROM refusals WHERE org_id = ? AND customer_id = ? AND (wanted <> '' OR note <> '')",
	"approvals": "SELECT id FROM approvals WHERE org_id = ? AND customer_id = ? AND (description <> '' OR comment <> '')",
	"approval_events": `SELECT id FROM approval_events WHERE org_id = ? AND comment <> '' AND approval_id IN (
		SELECT id FROM approvals WHERE org_id = ? AND customer_id = ?)`,
	"survey_answers": `SELECT id FROM survey_answers WHERE org_id = ? AND comment <> '' AND (` + customerAnswer + `)`,
	"survey_cases": `SELECT id FROM survey_cases WHERE org_id = ? AND action <> '' AND (act_id IN (` + customerActs + `)
		OR answer_id IN (SELECT id FROM survey_answers WHERE org_id = ? AND (` + customerAnswer + `)))`,
}

const (
	customerActs = "SELECT id FROM acts WHERE org_id = ? AND customer_id = ?"
	// customerAnswer: an answer is the customer's when it names them, or
	// answers one of their acts or a link made for them.
	customerAnswer = "customer_id = ? OR act_id IN (" + customerActs +
		") OR link_id IN (SELECT id FROM survey_links WHERE org_id = ? AND customer_id = ?)"
)

// erasureArgs are a customerRows query's arguments: the organisation for
// each "org_id = ?", the customer for every other placeholder.
func erasureArgs(query, orgID, customerID string) []any {
	var args []any
	for pos := 0; ; {
		j := strings.IndexByte(query[pos:], '?')
		if j < 0 {
			return args
		}
		if strings.HasSuffix(strings.TrimSpace(query[:pos+j]), "org_id =") {
			args = append(args, orgID)
		} else {
			args = append(args, customerID)
		}
		pos += j + 1
	}
}

// EraseCustomer erases a customer's personal data (margen.EraseCustomer) in
// one transaction under the organisation's lock: the customer row, the
// free text of their rows, the stored API answers and import files that
// quote them, and one customer.erase entry committing to every row it
// changed. A customer erased already is a no-op (Erased false). The
// idempotency record is stored with the write.
func (db *DB) EraseCustomer(ctx context.Context, orgID, customerID, actor string, at time.Time, idem *margen.IdemWrite[*margen.Erasure]) (*margen.Erasure, error) {
	stamp(&at)
	var out *margen.Erasure
	err := db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(orgID)
		if err != nil {
			return err
		}
		if !t.db.d.pg {
			// SQLite leaves the bytes of a rewritten or deleted cell in
			// the page's free space; secure_delete zeroes them, for this
			// transaction's writes only (the connection is the writer's).
			if _, err := t.exec("PRAGMA secure_delete = ON"); err != nil {
				return dbErr("secure delete", err)
			}
			defer t.exec("PRAGMA secure_delete = OFF")
		}
		st, err := t.erasureState(orgID, customerID)
		if err != nil {
			return err
		}
		w, err := margen.EraseCustomer(st, actor, at)
		if err != nil {
			return err
		}
		if err := t.applyErasure(orgID, w); err != nil {
			return err
		}
		if w.Audit != nil {
			if err := t.audit(c, *w.Audit); err != nil {
				return err
			}
		}
		res := w.Result
		rec, err := idem.For(&res)
		if err != nil {
			return err
		}
		out = &res
		return t.insertIdem(rec)
	})
	return out, err
}

// erasureState reads what the erasure rule needs, under the lock.
func (t *wtx) erasureState(orgID, customerID string) (*margen.ErasureState, error) {
	cus, err := scanCustomer(t.queryRow(customerSelect+" WHERE org_id = ? AND id = ?", orgID, customerID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, margen.NotFound("customer")
	}
	if err != nil {
		return nil, dbErr("read customer", err)
	}
	st := &margen.ErasureState{Customer: cus, Rows: map[string][]string{}}
	if cus.Erased() {
		return st, nil
	}
	for _, table := range margen.ErasedTables() {
		q := customerRows[table]
		ids, err := t.ids(q, erasureArgs(q, orgID, customerID)...)
		if err != nil {
			return nil, err
		}
		st.Rows[table] = ids
	}
	rows, err := t.query(idemSelect+" WHERE org_id = ?", orgID)
	if err != nil {
		return nil, dbErr("read idempotency", err)
	}
	for rows.Next() {
		rec, err := scanIdem(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr("read idempotency", err)
		}
		st.Idempotency = append(st.Idempotency, rec)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	if st.Emails, err = t.ids(`SELECT id FROM survey_emails WHERE org_id = ? AND (address <> '' OR token <> '' OR last_error <> '')
		AND (link_id IN (SELECT id FROM survey_links WHERE org_id = ? AND customer_id = ?) OR (address <> '' AND address = ?))`,
		orgID, orgID, customerID, cus.Contact); err != nil {
		return nil, err
	}
	rows, err = t.query("SELECT id, file_name, data, report FROM uploads WHERE org_id = ? AND kind = ?", orgID, margen.ImportCustomers)
	if err != nil {
		return nil, dbErr("read uploads", err)
	}
	for rows.Next() {
		var u margen.Upload
		var report string
		if err := rows.Scan(&u.ID, &u.FileName, &u.Data, &report); err != nil {
			rows.Close()
			return nil, dbErr("read uploads", err)
		}
		u.Report = []byte(report)
		st.Uploads = append(st.Uploads, u)
	}
	return st, closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	rows.Close()
	return dbErr("read rows", err)
}

// ids reads one column of text ids.
func (t *wtx) ids(query string, args ...any) ([]string, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, dbErr("read ids", err)
	}
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, dbErr("read ids", err)
		}
		out = append(out, id)
	}
	return out, closeRows(rows)
}

// applyErasure writes an erasure's write-set and names every sealed row it
// changed, so the audit entry commits to their new content.
func (t *wtx) applyErasure(orgID string, w *margen.ErasureWrite) error {
	if w.Audit == nil {
		return nil
	}
	c := w.Customer
	_, err := t.exec("UPDATE customers SET ref = ?, name = ?, contact = ?, tags = ? WHERE org_id = ? AND id = ?",
		c.Ref, c.Name, c.Contact, customerTags(c.Tags), orgID, c.ID)
	if err != nil {
		return dbErr("erase customer", err)
	}
	t.touch("customers", orgID, "id", c.ID)
	for _, cl := range w.Clear {
		set, arg, err := t.db.keySet(cl.IDs)
		if err != nil {
			return err
		}
		sets := make([]string, len(cl.Cols))
		for i, col := range cl.Cols {
			sets[i] = col + " = ''"
		}
		// Table and column names come from the rule's fixed list.
		if _, err := t.exec("UPDATE "+cl.Table+" SET "+strings.Join(sets, ", ")+" WHERE org_id = ? AND id IN ("+set+")",
			orgID, arg); err != nil {
			return dbErr("erase "+cl.Table, err)
		}
		if err := t.touchKeys(cl.Table, orgID, "id", cl.IDs); err != nil {
			return err
		}
	}
	for _, k := range w.Idempotency {
		if _, err := t.exec("DELETE FROM idempotency WHERE org_id = ? AND member_id = ? AND key = ?",
			k.OrgID, k.MemberID, k.Key); err != nil {
			return dbErr("erase idempotency", err)
		}
	}
	if len(w.Emails) > 0 {
		set, arg, err := t.db.keySet(w.Emails)
		if err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE survey_emails SET address = '', token = '', last_error = '',
			status = CASE WHEN status IN (?, ?) THEN ? ELSE status END WHERE org_id = ? AND id IN (`+set+`)`,
			margen.EmailQueued, margen.EmailRetrying, margen.EmailFailed, orgID, arg); err != nil {
			return dbErr("erase survey emails", err)
		}
	}
	for _, id := range w.Uploads {
		if _, err := t.exec("DELETE FROM uploads WHERE org_id = ? AND id = ?", orgID, id); err != nil {
			return dbErr("erase upload", err)
		}
	}
	return nil
}

// Sections of a customer's export, in the order ExportCustomer feeds them.
const (
	ExportCustomerRow     = "customer"
	ExportDecisions       = "decisions"
	ExportActs            = "acts"
	ExportReactions       = "reactions"
	ExportRefusals        = "refusals"
	ExportApprovals       = "approvals"
	ExportApprovalEvents  = "approval_events"
	ExportLedgerEntries   = "ledger_entries"
	ExportSurveyLinks     = "survey_links"
	ExportSurveyAnswers   = "survey_answers"
	ExportSurveyCases     = "survey_cases"
	ExportAuditEntries    = "audit"
	exportAuditSubjectMax = 1 << 20 // ids gathered to find the audit entries about the customer
)

// LedgerRow is one ledger entry as a customer's export shows it.
type LedgerRow struct {
	ID         string    `json:"id"`
	BudgetID   string    `json:"budget_id"`
	Subject    string    `json:"subject"`
	Period     string    `json:"period"`
	DecisionID string    `json:"decision_id"`
	Kind       string    `json:"kind"`
	Amount     int64     `json:"amount"`
	CreatedAt  time.Time `json:"created_at"`
}

// ExportCustomer feeds fn, section by section in one read snapshot, every
// row that mentions the customer: the customer, their decisions, acts, the
// reactions to their acts, refusals, approval requests with their history,
// the ledger entries of their decisions or their budgets, survey links made
// for them, their answers (by them, on their acts or links), the cases of
// those answers, and the audit entries whose subject is one of these rows.
// An unknown customer is ENOTFOUND before fn is called.
func (db *DB) ExportCustomer(ctx context.Context, orgID, customerID string, fn func(section string, v any) error) error {
	return db.scanSnapshot(ctx, "export customer", func(q queryFunc) error {
		rows, err := q(customerSelect+" WHERE org_id = ? AND id = ?", orgID, customerID)
		if err != nil {
			return dbErr("export customer", err)
		}
		var cus *margen.Customer
		for rows.Next() {
			c, err := scanCustomer(rows)
			if err != nil {
				rows.Close()
				return dbErr("export customer", err)
			}
			cus = &c
		}
		if err := closeRows(rows); err != nil {
			return err
		}
		if cus == nil {
			return margen.NotFound("customer")
		}
		if err := fn(ExportCustomerRow, cus); err != nil {
			return err
		}
		subjects := []string{customerID}
		each := func(section, query string, scan func(scanner) (any, string, error), args ...any) error {
			rows, err := q(query, args...)
			if err != nil {
				return dbErr("export "+section, err)
			}
			defer rows.Close()
			for rows.Next() {
				v, id, err := scan(rows)
				if err != nil {
					return dbErr("export "+section, err)
				}
				if id != "" && len(subjects) < exportAuditSubjectMax {
					subjects = append(subjects, id)
				}
				if err := fn(section, v); err != nil {
					return err
				}
			}
			return dbErr("export "+section, rows.Err())
		}
		acts := "(" + customerActs + ")"
		answers := "(" + customerAnswer + ")"
		steps := []struct {
			section, query string
			scan           func(scanner) (any, string, error)
		}{
			{ExportDecisions, decisionSelect + " WHERE org_id = ? AND customer_id = ? ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanDecision(s); return x, x.ID, err }},
			{ExportActs, actSelect + " WHERE org_id = ? AND customer_id = ? ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanAct(s); return x, x.ID, err }},
			{ExportReactions, reactionSelect + " WHERE org_id = ? AND act_id IN " + acts + " ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanReaction(s); return x, x.ID, err }},
			{ExportRefusals, refusalSelect + " WHERE org_id = ? AND customer_id = ? ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanRefusal(s); return x, x.ID, err }},
			{ExportApprovals, approvalSelect + " WHERE org_id = ? AND customer_id = ? ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanApproval(s); return x, x.ID, err }},
			{ExportApprovalEvents, approvalEventSelect + " WHERE org_id = ? AND approval_id IN (SELECT id FROM approvals WHERE org_id = ? AND customer_id = ?) ORDER BY at, id",
				func(s scanner) (any, string, error) { x, err := scanApprovalEvent(s); return x, "", err }},
			{ExportLedgerEntries, "SELECT id, budget_id, subject, period, decision_id, kind, amount, created_at FROM ledger_entries WHERE org_id = ? AND (subject = ? OR decision_id IN (SELECT id FROM decisions WHERE org_id = ? AND customer_id = ?)) ORDER BY created_at, id",
				func(s scanner) (any, string, error) {
					var x LedgerRow
					err := s.Scan(&x.ID, &x.BudgetID, &x.Subject, &x.Period, &x.DecisionID, &x.Kind, &x.Amount, tsCol{&x.CreatedAt})
					return x, "", err
				}},
			{ExportSurveyLinks, surveyLinkSelect + " WHERE org_id = ? AND customer_id = ? ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanSurveyLink(s); return x, x.ID, err }},
			{ExportSurveyAnswers, surveyAnswerSelect + " WHERE org_id = ? AND " + answers + " ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanSurveyAnswer(s); return x, x.ID, err }},
			{ExportSurveyCases, caseSelect + " WHERE org_id = ? AND (act_id IN " + acts + " OR answer_id IN (SELECT id FROM survey_answers WHERE org_id = ? AND " + answers + ")) ORDER BY created_at, id",
				func(s scanner) (any, string, error) { x, err := scanCase(s); return x, x.ID, err }},
		}
		for _, st := range steps {
			if err := each(st.section, st.query, st.scan, erasureArgs(st.query, orgID, customerID)...); err != nil {
				return err
			}
		}
		// The audit entries about these rows (the trail has no index on
		// subject: one pass over the organisation's entries).
		set, arg, err := db.keySet(subjects)
		if err != nil {
			return err
		}
		return each(ExportAuditEntries, auditSelect+" WHERE org_id = ? AND subject IN ("+set+") ORDER BY seq",
			func(s scanner) (any, string, error) { x, err := scanAudit(s); return x, "", err }, orgID, arg)
	})
}
