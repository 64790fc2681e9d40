package margen

import (
	"context"
	"time"
)

// Import kinds: what a CSV import loads, each keyed by its external
// reference (customers by ref, members by login, teams by slug).
const (
	ImportCustomers = "customers"
	ImportMembers   = "members"
	ImportTeams     = "teams"
)

// ImportStore loads records in bulk, in one transaction.
type ImportStore interface {
	// Import locks the organisation, reads the existing records of
	// q.Kind whose keys are in q.Keys, hands them to plan, and writes what
	// plan returns (upserts by key and their audit entries), all in one
	// transaction. A nil write (a dry run, or a file refused as a whole)
	// writes nothing.
	Import(ctx context.Context, q ImportQuery, plan func(*ImportState) (*ImportWrite, error)) error
}

// ImportQuery names the records an import may touch.
type ImportQuery struct {
	OrgID string
	Kind  string   // ImportCustomers, ImportMembers or ImportTeams
	Keys  []string // refs, logins or slugs
	// DryRun reads without taking any lock; plan must then return nil.
	DryRun bool
}

// ImportState is what Import read under the organisation's lock: the
// existing records of the query's kind, by key.
type ImportState struct {
	Customers map[string]Customer // by ref
	Members   map[string]Member   // by login
	Teams     map[string]Team     // by slug
}

// ImportWrite is what an import writes: records to insert or update (by
// key; an existing record keeps its id and creation time) and the audit
// entries (Seq, PrevHash and Hash are filled by the store). Progress, when
// set, is called with the number of records written so far.
type ImportWrite struct {
	Customers []Customer
	Members   []Member
	Teams     []Team
	Audit     []AuditEntry
	Progress  func(written int)
}

// ExportFilter bounds an export: one organisation's records created (for
// the audit trail: at) in [Since, Until); a zero bound is open.
type ExportFilter struct {
	OrgID string
	Since time.Time
	Until time.Time
}

// Names are the readable names an export joins to a record: the login of
// its member and the reference of its customer (empty when there is none).
type Names struct {
	MemberLogin string
	CustomerRef string
}

// ExportStore streams records for exports. Rows are read with one
// streaming query and handed to fn one at a time, never collected, so
// memory stays flat whatever the count; fn's error stops the export and is
// returned. Decisions, acts and refusals come in creation order, reactions
// and approvals in id order, the audit trail in chain order.
type ExportStore interface {
	ExportDecisions(ctx context.Context, f ExportFilter, fn func(*Decision, Names) error) error
	ExportActs(ctx context.Context, f ExportFilter, fn func(*Act, Names) error) error
	ExportReactions(ctx context.Context, f ExportFilter, fn func(*Reaction, Names) error) error
	ExportRefusals(ctx context.Context, f ExportFilter, fn func(*Refusal, Names) error) error
	ExportApprovals(ctx context.Context, f ExportFilter, fn func(*Approval, Names) error) error
	ExportAudit(ctx context.Context, f ExportFilter, fn func(*AuditEntry) error) error
}
