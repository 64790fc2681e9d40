package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/margenhq/margen"
)

// --- imports ---

// importChunk is how many records an import writes between two progress
// reports (each chunk is still one or more multi-row statements).
const importChunk = 2000

// Import reads the existing records an import may touch and writes what
// plan decides, in one transaction under the organisation's lock.
func (db *DB) Import(ctx context.Context, q margen.ImportQuery, plan func(*margen.ImportState) (*margen.ImportWrite, error)) error {
	if q.DryRun {
		// Nothing will be written: read through the read pool, without
		// taking the organisation's lock (or SQLite's write lock) from
		// the decisions.
		st, err := db.importState(ctx, db.read, q)
		if err != nil {
			return err
		}
		w, err := plan(st)
		if err == nil && w != nil {
			return fmt.Errorf("store: a dry-run import must not write")
		}
		return err
	}
	return db.writeTx(ctx, func(t *wtx) error {
		c, err := t.lockOrg(q.OrgID)
		if err != nil {
			return err
		}
		st, err := db.importState(ctx, t.tx, q)
		if err != nil {
			return err
		}
		w, err := plan(st)
		if err != nil || w == nil {
			return err
		}
		if err := t.importWrite(q.OrgID, w); err != nil {
			return err
		}
		return t.appendAudit(map[string]*chain{q.OrgID: c}, w.Audit)
	})
}

// keySet is the right-hand side of "col IN (...)" for a list of text keys,
// as one bind parameter whatever their number: a JSON array on SQLite, a
// text[] on PostgreSQL.
func (db *DB) keySet(keys []string) (string, any, error) {
	if db.d.pg {
		return "SELECT unnest(?::text[])", keys, nil
	}
	if keys == nil {
		keys = []string{}
	}
	js, err := jsonValue(keys)
	return "SELECT value FROM json_each(?)", js, err
}

// importSelect is the query of the existing records of an import kind
// whose keys are in the set (see keySet): one index lookup per key.
func importSelect(kind, set string) string {
	switch kind {
	case margen.ImportCustomers:
		return customerSelect + " WHERE org_id = ? AND ref IN (" + set + ")"
	case margen.ImportMembers:
		return memberSelect + " WHERE org_id = ? AND login IN (" + set + ")"
	case margen.ImportTeams:
		return teamSelect + " WHERE org_id = ? AND slug IN (" + set + ")"
	}
	return ""
}

// importState reads the existing records of an import through qr (the
// write transaction, or the read pool for a dry run).
func (db *DB) importState(ctx context.Context, qr querier, q margen.ImportQuery) (*margen.ImportState, error) {
	set, arg, err := db.keySet(q.Keys)
	if err != nil {
		return nil, err
	}
	query, args := db.d.rebind(importSelect(q.Kind, set)), []any{q.OrgID, arg}
	each := func(query string, args []any, fn func(scanner) error) error {
		rows, err := qr.QueryContext(ctx, query, args...)
		if err != nil {
			return dbErr("read", err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return dbErr("scan", err)
			}
		}
		return dbErr("read", rows.Err())
	}
	st := &margen.ImportState{}
	switch q.Kind {
	case margen.ImportCustomers:
		st.Customers = make(map[string]margen.Customer, len(q.Keys))
		err = each(query, args, func(s scanner) error {
			c, err := scanCustomer(s)
			st.Customers[c.Ref] = c
			return err
		})
		if err != nil {
			break
		}
		// An erased customer's reference is gone, but their id is derived
		// from it: a file naming that reference again finds them here
		// (the import refuses the line, margen.Customer.Erased).
		byID := make(map[string]string, len(q.Keys))
		ids := make([]string, 0, len(q.Keys))
		for _, k := range q.Keys {
			id := margen.CustomerID(q.OrgID, k)
			byID[id] = k
			ids = append(ids, id)
		}
		var idSet string
		var idArg any
		if idSet, idArg, err = db.keySet(ids); err != nil {
			break
		}
		err = each(db.d.rebind(customerSelect+" WHERE org_id = ? AND ref = id AND id IN ("+idSet+")"), []any{q.OrgID, idArg},
			func(s scanner) error {
				c, err := scanCustomer(s)
				if k, ok := byID[c.ID]; ok {
					st.Customers[k] = c
				}
				return err
			})
	case margen.ImportMembers:
		st.Members = make(map[string]margen.Member, len(q.Keys))
		err = each(query, args, func(s scanner) error {
			m, err := scanMember(s)
			st.Members[m.Login] = m
			return err
		})
	case margen.ImportTeams:
		st.Teams = make(map[string]margen.Team, len(q.Keys))
		err = each(query, args, func(s scanner) error {
			tm, err := scanTeam(s)
			st.Teams[tm.Slug] = tm
			return err
		})
	default:
		return nil, margen.Invalid("kind", "error.invalid_value", "field", "kind",
			"allowed", "customers, members, teams")
	}
	return st, err
}

var (
	importCustomerCols = []string{"org_id", "id", "ref", "name", "contact", "tags", "created_at"}
	importMemberCols   = []string{"org_id", "id", "login", "name", "access", "role", "team", "language", "active",
		"password_hash", "created_at"}
	importTeamCols = []string{"org_id", "id", "slug", "name", "created_at"}
)

// importWrite upserts the records by their key: an existing row keeps its
// id, creation time (and a member their password); the other columns take
// the imported values.
func (t *wtx) importWrite(orgID string, w *margen.ImportWrite) error {
	d := t.db.d
	done := 0
	progress := func(n int) {
		done += n
		if w.Progress != nil {
			w.Progress(done)
		}
	}
	for start := 0; start < len(w.Customers); start += importChunk {
		part := w.Customers[start:min(start+importChunk, len(w.Customers))]
		err := t.insertMany("customers", importCustomerCols,
			" ON CONFLICT (org_id, ref) DO UPDATE SET name = excluded.name, contact = excluded.contact, tags = excluded.tags",
			len(part), func(i int, a []any) []any {
				c := &part[i]
				stamp(&c.CreatedAt)
				return append(a, orgID, c.ID, c.Ref, c.Name, c.Contact, customerTags(c.Tags), d.ts(c.CreatedAt))
			})
		if err != nil {
			return dbErr("import customers", err)
		}
		keys := make([]string, len(part))
		for i := range part {
			keys[i] = part[i].Ref
		}
		if err := t.touchKeys("customers", orgID, "ref", keys); err != nil {
			return err
		}
		progress(len(part))
	}
	for start := 0; start < len(w.Members); start += importChunk {
		part := w.Members[start:min(start+importChunk, len(w.Members))]
		err := t.insertMany("members", importMemberCols,
			` ON CONFLICT (org_id, login) DO UPDATE SET name = excluded.name, access = excluded.access,
				role = excluded.role, team = excluded.team, language = excluded.language, active = excluded.active`,
			len(part), func(i int, a []any) []any {
				m := &part[i]
				stamp(&m.CreatedAt)
				return append(a, orgID, m.ID, m.Login, m.Name, m.Access, m.Role, m.Team, m.Language, m.Active,
					m.PasswordHash, d.ts(m.CreatedAt))
			})
		if err != nil {
			return dbErr("import members", err)
		}
		keys := make([]string, len(part))
		for i := range part {
			keys[i] = part[i].Login
		}
		if err := t.touchKeys("members", orgID, "login", keys); err != nil {
			return err
		}
		progress(len(part))
	}
	for start := 0; start < len(w.Teams); start += importChunk {
		part := w.Teams[start:min(start+importChunk, len(w.Teams))]
		err := t.insertMany("teams", importTeamCols, " ON CONFLICT (org_id, slug) DO UPDATE SET name = excluded.name",
			len(part), func(i int, a []any) []any {
				tm := &part[i]
				stamp(&tm.CreatedAt)
				return append(a, orgID, tm.ID, tm.Slug, tm.Name, d.ts(tm.CreatedAt))
			})
		if err != nil {
			return dbErr("import teams", err)
		}
		keys := make([]string, len(part))
		for i := range part {
			keys[i] = part[i].Slug
		}
		if err := t.touchKeys("teams", orgID, "slug", keys); err != nil {
			return err
		}
		progress(len(part))
	}
	return nil
}

// --- exports ---

// stream runs one read query and hands every row to fn as it arrives: no
// page is collected, so an export of millions of rows keeps flat memory.
func stream(ctx context.Context, db *DB, query string, args []any, fn func(scanner) error) error {
	rows, err := db.readPool().QueryContext(ctx, db.d.rebind(query), args...)
	if err != nil {
		return dbErr("export", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return dbErr("export", err)
	}
	return nil
}

// qualified prefixes column names with a table alias.
func qualified(alias string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = alias + "." + c
	}
	return strings.Join(out, ", ")
}

// exportWhere scopes an export to the organisation and its period on the
// given time column.
func exportWhere(d dialect, f margen.ExportFilter, col string) (string, []any) {
	s, args := " WHERE "+strings.SplitN(col, ".", 2)[0]+".org_id = ?", []any{f.OrgID}
	if !f.Since.IsZero() {
		s += " AND " + col + " >= ?"
		args = append(args, d.ts(f.Since))
	}
	if !f.Until.IsZero() {
		s += " AND " + col + " < ?"
		args = append(args, d.ts(f.Until))
	}
	return s, args
}

// withNames scans a row's own columns with scan, then the joined names.
type withNames struct {
	s     scanner
	names *margen.Names
}

func (w withNames) Scan(dest ...any) error {
	return w.s.Scan(append(dest, &w.names.MemberLogin, &w.names.CustomerRef)...)
}

const (
	joinMember   = " LEFT JOIN members m ON m.org_id = x.org_id AND m.id = x.member_id"
	joinCustomer = " LEFT JOIN customers c ON c.org_id = x.org_id AND c.id = x.customer_id"
	namesCols    = ", COALESCE(m.login, ''), COALESCE(c.ref, '')"
)

var exportDecisionCols = []string{"id", "member_id", "customer_id", "action", "amount", "currency", "reason",
	"outcome", "policy_version", "rule", "explanation_code", "flagged", "act_id", "approval_id", "refusal_id",
	"created_at", "team"}

// exportQueries are the export queries by kind: what they select and
// join, the time column of the period and the order. Every kind but the
// audit trail follows its (org_id, created_at) index, the audit trail its
// primary key, so neither engine has to sort (SQLite would sort in memory).
var exportQueries = map[string]struct{ sel, timeCol, order string }{
	"decisions": {"SELECT " + qualified("x", exportDecisionCols) + namesCols + " FROM decisions x" + joinMember + joinCustomer,
		"x.created_at", "x.created_at"},
	"acts": {"SELECT " + qualified("x", actCols) + namesCols + " FROM acts x" + joinMember + joinCustomer,
		"x.created_at", "x.created_at"},
	"reactions": {"SELECT " + qualified("x", reactionCols) +
		namesCols + " FROM reactions x" + joinMember +
		" LEFT JOIN acts a ON a.org_id = x.org_id AND a.id = x.act_id" +
		" LEFT JOIN customers c ON c.org_id = a.org_id AND c.id = a.customer_id",
		"x.created_at", "x.created_at"},
	"refusals": {"SELECT " + qualified("x", refusalCols) + namesCols + " FROM refusals x" + joinMember + joinCustomer,
		"x.created_at", "x.created_at"},
	"approvals": {"SELECT " + qualified("x", approvalReadCols) + namesCols + " FROM approvals x" + joinMember + joinCustomer,
		"x.created_at", "x.created_at"},
	"audit": {"SELECT " + qualified("x", auditCols) + " FROM audit_log x", "x.at", "x.seq"},
}

// exportQuery is the query of an export of kind with its arguments.
func (db *DB) exportQuery(kind string, f margen.ExportFilter) (string, []any) {
	q := exportQueries[kind]
	w, args := exportWhere(db.d, f, q.timeCol)
	return q.sel + w + " ORDER BY " + q.order, args
}

// ExportDecisions streams the organisation's decisions of the period in
// creation order, without their context and budget views.
func (db *DB) ExportDecisions(ctx context.Context, f margen.ExportFilter, fn func(*margen.Decision, margen.Names) error) error {
	q, args := db.exportQuery("decisions", f)
	return stream(ctx, db, q, args, func(s scanner) error {
		var x margen.Decision
		var n margen.Names
		err := s.Scan(&x.ID, &x.MemberID, &x.CustomerID, &x.Action, &x.Amount, &x.Currency, &x.Reason, &x.Outcome,
			&x.PolicyVersion, &x.Rule, &x.Explanation.Code, &x.Flagged, &x.ActID, &x.ApprovalID, &x.RefusalID,
			tsCol{&x.CreatedAt}, &x.Team, &n.MemberLogin, &n.CustomerRef)
		if err != nil {
			return dbErr("export decisions", err)
		}
		x.OrgID = f.OrgID
		return fn(&x, n)
	})
}

// ExportActs streams the period's acts in creation order, without their
// reactions (ExportReactions has them).
func (db *DB) ExportActs(ctx context.Context, f margen.ExportFilter, fn func(*margen.Act, margen.Names) error) error {
	q, args := db.exportQuery("acts", f)
	return stream(ctx, db, q, args, func(s scanner) error {
		var n margen.Names
		x, err := scanAct(withNames{s, &n})
		if err != nil {
			return dbErr("export acts", err)
		}
		return fn(&x, n)
	})
}

// ExportReactions streams the period's reactions in creation order, named by
// the member who recorded them and the customer of their act.
func (db *DB) ExportReactions(ctx context.Context, f margen.ExportFilter, fn func(*margen.Reaction, margen.Names) error) error {
	q, args := db.exportQuery("reactions", f)
	return stream(ctx, db, q, args, func(s scanner) error {
		var n margen.Names
		x, err := scanReaction(withNames{s, &n})
		if err != nil {
			return dbErr("export reactions", err)
		}
		return fn(&x, n)
	})
}

// ExportRefusals streams the period's refusals in creation order.
func (db *DB) ExportRefusals(ctx context.Context, f margen.ExportFilter, fn func(*margen.Refusal, margen.Names) error) error {
	q, args := db.exportQuery("refusals", f)
	return stream(ctx, db, q, args, func(s scanner) error {
		var n margen.Names
		x, err := scanRefusal(withNames{s, &n})
		if err != nil {
			return dbErr("export refusals", err)
		}
		return fn(&x, n)
	})
}

// ExportApprovals streams the approval requests created in the period, in
// creation order, without their history.
func (db *DB) ExportApprovals(ctx context.Context, f margen.ExportFilter, fn func(*margen.Approval, margen.Names) error) error {
	q, args := db.exportQuery("approvals", f)
	return stream(ctx, db, q, args, func(s scanner) error {
		var n margen.Names
		x, err := scanApproval(withNames{s, &n})
		if err != nil {
			return dbErr("export approvals", err)
		}
		return fn(&x, n)
	})
}

// ExportAudit streams the period's audit entries in chain order.
func (db *DB) ExportAudit(ctx context.Context, f margen.ExportFilter, fn func(*margen.AuditEntry) error) error {
	q, args := db.exportQuery("audit", f)
	return stream(ctx, db, q, args, func(s scanner) error {
		e, err := scanAudit(s)
		if err != nil {
			return dbErr("export audit", err)
		}
		return fn(&e)
	})
}
