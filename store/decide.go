package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// DecideBatch runs one batch of decisions in one write transaction:
//
//  1. lock the organisation rows of q.OrgIDs (sorted) and read each one's
//     active policy version;
//  2. lock and read the budget accounts of q.Budgets, always in (org,
//     budget, subject, period) order, opening those that do not exist yet
//     (on PostgreSQL before locking them; on SQLite, where the transaction
//     owns the database, only those the read did not find);
//  3. read the customers and idempotency records the batch names;
//  4. call decide with that state: an error rolls everything back and is
//     returned unchanged;
//  5. write the result with one multi-row statement per table, apply the
//     account deltas and chain the audit entries;
//  6. commit, and return once the commit is durable.
//
// The number of statements does not grow with the batch, which is what makes
// a batch cheap per decision. Because every writer takes the organisation
// rows and then the accounts in one global order, concurrent batches (of
// this process or of another one on the same PostgreSQL) wait for each other
// instead of losing updates or deadlocking. A transient failure (deadlock,
// serialization failure, SQLITE_BUSY) is returned as an EBUSY error
// for which IsRetryable is true; retrying is the caller's job.
//
// q must name every organisation and budget account the write touches: an
// organisation missing from q is locked late, out of order, when its audit
// entries are written, which on PostgreSQL can deadlock with another batch
// (it is then reported as retryable, not as a lost update).
func (db *DB) DecideBatch(ctx context.Context, q margen.BatchQuery, decide func(*margen.BatchState) (*margen.BatchWrite, error)) error {
	durable, err := db.CommitBatch(ctx, q, decide)
	if err != nil {
		return err
	}
	return durable()
}

// CommitBatch is DecideBatch up to its commit: it returns as soon as the
// write connection is free for the next transaction, with durable, which
// returns once the commit is on disk (on SQLite the log's sync runs after
// the commit, see walSync; on PostgreSQL the commit has already waited for
// its log and durable returns at once). The decision engine answers its
// callers only after durable returns nil; a non-nil error from it means the
// write may be lost and nothing more can be written (walSync).
func (db *DB) CommitBatch(ctx context.Context, q margen.BatchQuery, decide func(*margen.BatchState) (*margen.BatchWrite, error)) (durable func() error, err error) {
	n, err := db.commitTx(ctx, func(t *wtx) error {
		t.batch = true
		st := &margen.BatchState{
			PolicyVersions: make(map[string]int, len(q.OrgIDs)),
			Balances:       make(map[margen.OrgBudgetKey]margen.Balance, len(q.Budgets)),
			Customers:      make(map[margen.OrgRef]margen.Customer, len(q.Customers)),
			Idem:           make(map[margen.IdemKey]margen.Idempotency, len(q.Idem)),
		}
		chains, err := t.lockOrgs(q.OrgIDs, st)
		if err != nil {
			return err
		}
		if err := t.lockAccounts(q.Budgets, chains, st); err != nil {
			return err
		}
		if err := t.readCustomers(q.Customers, st); err != nil {
			return err
		}
		if err := t.readIdem(q.Idem, st); err != nil {
			return err
		}
		w, err := decide(st)
		if err != nil {
			return err
		}
		if w == nil {
			return nil
		}
		return t.writeBatch(w, chains, st.Balances)
	})
	if err != nil {
		return nil, err
	}
	return func() error { return db.wal.wait(n) }, nil
}

// lockOrgs locks the organisation rows in id order, then reads their active
// policy versions. The versions are read by a second statement on purpose:
// on PostgreSQL (READ COMMITTED) it takes a fresh snapshot after the locks
// are held, so a policy published while we waited is seen.
func (t *wtx) lockOrgs(ids []string, st *margen.BatchState) (map[string]*chain, error) {
	ids = sortedUnique(ids)
	chains := make(map[string]*chain, len(ids))
	if len(ids) == 0 {
		return chains, nil
	}
	in := "?" + strings.Repeat(", ?", len(ids)-1)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
		st.PolicyVersions[id] = 0
	}
	rows, err := t.query("SELECT id, "+chainCols+" FROM orgs WHERE id IN ("+in+") ORDER BY id"+t.db.d.forNoKeyUpdate(), args...)
	if err != nil {
		return nil, dbErr("lock orgs", err)
	}
	for rows.Next() {
		var id string
		c := &chain{}
		if err := rows.Scan(append([]any{&id}, c.scanArgs()...)...); err != nil {
			rows.Close()
			return nil, dbErr("lock orgs", err)
		}
		chains[id] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr("lock orgs", err)
	}
	rows, err = t.query(activeVersionsSelect+"("+in+")", args...)
	if err != nil {
		return nil, dbErr("read policy versions", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v int
		if err := rows.Scan(&id, &v); err != nil {
			return nil, dbErr("read policy versions", err)
		}
		st.PolicyVersions[id] = v
	}
	return chains, dbErr("read policy versions", rows.Err())
}

// activeVersionsSelect reads the active policy version of the organisations
// listed after it; it seeks policy_versions_active (migration 00021).
const activeVersionsSelect = "SELECT org_id, version FROM policy_versions WHERE active AND org_id IN "

func compareKeys(a, b margen.OrgBudgetKey) int {
	return cmp.Or(
		strings.Compare(a.OrgID, b.OrgID),
		strings.Compare(a.BudgetID, b.BudgetID),
		strings.Compare(a.Subject, b.Subject),
		strings.Compare(a.Period, b.Period),
	)
}

// lockAccounts creates the missing accounts, then locks and reads them, in
// key order. Keys of organisations that do not exist read as zero.
func (t *wtx) lockAccounts(keys []margen.OrgBudgetKey, chains map[string]*chain, st *margen.BatchState) error {
	keys = slices.Clone(keys)
	keys = slices.DeleteFunc(keys, func(k margen.OrgBudgetKey) bool {
		st.Balances[k] = margen.Balance{}
		return chains[k.OrgID] == nil
	})
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, compareKeys)
	keys = slices.CompactFunc(keys, func(a, b margen.OrgBudgetKey) bool { return a == b })
	at := t.db.d.ts(now())
	open := func(keys []margen.OrgBudgetKey) error {
		err := t.insertBatch(&openAccountsInsert, len(keys), func(i int, a []any) []any {
			return openAccountArgs(&keys[i], at, a)
		})
		return dbErr("open budget accounts", err)
	}
	if t.db.d.pg {
		// Open first, then lock: a row lock needs a row, and another
		// process may open the same account meanwhile.
		if err := open(keys); err != nil {
			return err
		}
		return t.readAccounts(keys, st, nil)
	}
	// On SQLite this transaction (BEGIN IMMEDIATE) owns the database, so
	// an account not read now cannot appear before the commit: read them
	// all, then open only the missing ones, which start at zero. Most
	// batches find every account open and insert nothing.
	found := make(map[margen.OrgBudgetKey]bool, len(keys))
	if err := t.readAccounts(keys, st, found); err != nil || len(found) == len(keys) {
		return err
	}
	return open(slices.DeleteFunc(keys, func(k margen.OrgBudgetKey) bool { return found[k] }))
}

// readAccounts reads (and on PostgreSQL locks, in key order) the accounts
// of keys into st.Balances, and marks each one read in found (if not nil).
func (t *wtx) readAccounts(keys []margen.OrgBudgetKey, st *margen.BatchState, found map[margen.OrgBudgetKey]bool) error {
	args := t.keySet(len(keys), 4, func(i int, tuple []string) {
		k := &keys[i]
		tuple[0], tuple[1], tuple[2], tuple[3] = k.OrgID, k.BudgetID, k.Subject, k.Period
	})
	rows, err := t.queryRaw(t.db.d.pick(sqliteLockAccounts, pgLockAccounts), args...)
	if err != nil {
		return dbErr("lock budget accounts", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k margen.OrgBudgetKey
		var b margen.Balance
		if err := rows.Scan(&k.OrgID, &k.BudgetID, &k.Subject, &k.Period, &b.Posted, &b.Pending); err != nil {
			return dbErr("lock budget accounts", err)
		}
		st.Balances[k] = b
		if found != nil {
			found[k] = true
		}
	}
	return dbErr("lock budget accounts", rows.Err())
}

// readCustomers reads the batch's customers by id: a customer's id is
// derived from its reference (margen.CustomerID), so one lookup finds a
// live customer and an erased one alike. An erased customer's reference is
// gone, so a decision naming the old reference counts for the erased
// record (which stores no name) instead of inserting a row the batch would
// seal with values that were never stored.
func (t *wtx) readCustomers(refs []margen.OrgRef, st *margen.BatchState) error {
	if len(refs) == 0 {
		return nil
	}
	byID := make(map[string]margen.OrgRef, len(refs))
	args := t.keySet(len(refs), 2, func(i int, tuple []string) {
		id := margen.CustomerID(refs[i].OrgID, refs[i].Ref)
		byID[id] = refs[i]
		tuple[0], tuple[1] = refs[i].OrgID, id
	})
	rows, err := t.queryRaw(t.db.d.pick(sqliteReadCustomers, pgReadCustomers), args...)
	if err != nil {
		return dbErr("read customers", err)
	}
	cs, err := collect(rows, scanCustomer)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if r, ok := byID[c.ID]; ok && r.OrgID == c.OrgID {
			st.Customers[r] = c
		}
	}
	return nil
}

func (t *wtx) readIdem(keys []margen.IdemKey, st *margen.BatchState) error {
	if len(keys) == 0 {
		return nil
	}
	args := t.keySet(len(keys), 3, func(i int, tuple []string) {
		tuple[0], tuple[1], tuple[2] = keys[i].OrgID, keys[i].MemberID, keys[i].Key
	})
	rows, err := t.queryRaw(t.db.d.pick(sqliteReadIdem, pgReadIdem), args...)
	if err != nil {
		return dbErr("read idempotency", err)
	}
	is, err := collect(rows, scanIdem)
	if err != nil {
		return err
	}
	for _, i := range is {
		st.Idem[margen.IdemKey{OrgID: i.OrgID, MemberID: i.MemberID, Key: i.Key}] = i
	}
	return nil
}

// writeBatch writes everything the batch decided. locked holds the accounts
// lockAccounts opened and locked.
func (t *wtx) writeBatch(w *margen.BatchWrite, chains map[string]*chain, locked map[margen.OrgBudgetKey]margen.Balance) error {
	d := t.db.d
	ts := now()
	// Each row's digest is taken from the very values inserted: the seal
	// costs no read here.
	seal := newBatchSeal(w.Audit)
	for i := range w.Customers {
		c := &w.Customers[i]
		if c.ID == "" {
			c.ID = margen.CustomerID(c.OrgID, c.Ref)
		}
		stampAt(&c.CreatedAt, ts)
	}
	err := t.insertBatch(&customersInsert, len(w.Customers), func(i int, a []any) []any {
		c := &w.Customers[i]
		n := len(a)
		a = customerArgs(d, c, a)
		seal.add(c.OrgID, "", "customers", c.ID, a[n:])
		return a
	})
	if err != nil {
		return dbErr("insert customers", err)
	}

	var encErr error
	for i := range w.Decisions {
		stampAt(&w.Decisions[i].CreatedAt, ts)
	}
	err = t.insertBatch(&decisionsInsert, len(w.Decisions), func(i int, a []any) []any {
		n := len(a)
		x := &w.Decisions[i]
		a, err := decisionArgs(d, x, a)
		if err != nil {
			encErr = err
			return a
		}
		seal.add(x.OrgID, x.ID, "decisions", x.ID, a[n:])
		return a
	})
	if encErr != nil {
		return encErr
	}
	if err != nil {
		return conflictOr("insert decisions", err, "error.decision_exists")
	}

	for i := range w.Acts {
		stampAt(&w.Acts[i].CreatedAt, ts)
	}
	err = t.insertBatch(&actsInsert, len(w.Acts), func(i int, a []any) []any {
		n, x := len(a), &w.Acts[i]
		a = actArgs(d, x, a)
		seal.add(x.OrgID, x.DecisionID, "acts", x.ID, a[n:])
		return a
	})
	if err != nil {
		return conflictOr("insert acts", err, "error.act_exists")
	}

	for i := range w.Refusals {
		stampAt(&w.Refusals[i].CreatedAt, ts)
	}
	err = t.insertBatch(&refusalsInsert, len(w.Refusals), func(i int, a []any) []any {
		n, x := len(a), &w.Refusals[i]
		a = refusalArgs(d, x, a)
		seal.add(x.OrgID, x.DecisionID, "refusals", x.ID, a[n:])
		return a
	})
	if err != nil {
		return conflictOr("insert refusals", err, "error.refusal_exists")
	}

	for i := range w.Approvals {
		stampAt(&w.Approvals[i].CreatedAt, ts)
		stampAt(&w.Approvals[i].DueAt, w.Approvals[i].CreatedAt.Add(w.Approvals[i].SLA))
	}
	// Every column is named (not left to its default) so the seal can
	// commit to the row as stored without reading it back.
	err = t.insertBatch(&approvalsInsert, len(w.Approvals), func(i int, a []any) []any {
		n, x := len(a), &w.Approvals[i]
		a = approvalAllArgs(d, x, a)
		seal.add(x.OrgID, x.DecisionID, "approvals", x.ID, a[n:len(a):len(a)])
		return a
	})
	if err != nil {
		return conflictOr("insert approvals", err, "error.approval_exists")
	}

	for i := range w.Ledger {
		e := &w.Ledger[i]
		if e.ID == "" {
			e.ID = margen.NewID("led")
		}
		stampAt(&e.CreatedAt, ts)
	}
	err = t.insertBatch(&ledgerInsert, len(w.Ledger), func(i int, a []any) []any {
		e := &w.Ledger[i]
		n := len(a)
		a = ledgerArgs(d, e, a)
		seal.add(e.OrgID, e.DecisionID, "ledger_entries", e.ID, a[n:])
		return a
	})
	if err != nil {
		return conflictOr("insert ledger entries", err, "error.ledger_entry_exists")
	}

	deltas := mergeDeltas(w.Accounts)
	at := d.ts(ts)
	if !d.pg && allLocked(deltas, locked) {
		err = t.updateDeltas(deltas, at)
	} else {
		err = t.insertBatch(&deltasUpsert, len(deltas), func(i int, a []any) []any {
			return deltaArgs(&deltas[i], at, a)
		})
	}
	if err != nil {
		return dbErr("apply account deltas", err)
	}

	seal.apply(w.Audit)
	if err := t.appendAudit(chains, w.Audit); err != nil {
		return err
	}
	if _, err := t.enqueueJobs(w.Jobs, ts); err != nil {
		return err
	}
	return t.insertIdems(w.Idem)
}

// stampAt fills a zero time with def and truncates it to microseconds.
func stampAt(t *time.Time, def time.Time) {
	if t.IsZero() {
		*t = def
	}
	*t = t.UTC().Truncate(time.Microsecond)
}

// mergeDeltas sums the deltas of each account (an upsert may touch a row
// only once per statement) and sorts them in lock order.
func mergeDeltas(in []margen.AccountDelta) []margen.AccountDelta {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b margen.AccountDelta) int { return compareKeys(a.OrgBudgetKey, b.OrgBudgetKey) })
	n := 0
	for i := range out {
		if n > 0 && out[n-1].OrgBudgetKey == out[i].OrgBudgetKey {
			m := &out[n-1]
			m.Posted += out[i].Posted
			m.Pending += out[i].Pending
			if out[i].Scope != "" {
				m.Scope, m.PeriodKind, m.Limit = out[i].Scope, out[i].PeriodKind, out[i].Limit
			}
			continue
		}
		out[n] = out[i]
		n++
	}
	return out[:n]
}

func sortedUnique(ids []string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// allLocked reports whether every delta names an account lockAccounts has
// opened (so it exists and an UPDATE reaches it).
func allLocked(deltas []margen.AccountDelta, locked map[margen.OrgBudgetKey]margen.Balance) bool {
	for i := range deltas {
		if _, ok := locked[deltas[i].OrgBudgetKey]; !ok {
			return false
		}
	}
	return true
}
