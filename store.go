package margen

import (
	"context"
	"time"
)

// Store is the contract of the database. Two engines implement it (SQLite and
// PostgreSQL) and one conformance suite (store/storetest) checks both.
//
// Tenancy is enforced here: every method that reads or writes tenant data
// takes the organisation id and never returns rows of another organisation;
// an id of another organisation answers exactly like a missing one
// (ENOTFOUND).
//
// Every write appends to the organisation's hash-chained audit trail in the
// same transaction. Writes that accept an *Idempotency record store it in the
// same transaction too; if the key is already recorded (and the record has
// not expired by the new record's CreatedAt) they change nothing and return
// an ECONFLICT error with key "error.idempotency_exists".
type Store interface {
	ApprovalStore
	WebhookStore
	ImportStore
	ExportStore
	JobStore
	LedgerCheckStore

	Ping(ctx context.Context) error
	Close() error

	// Organisations.
	CreateOrg(ctx context.Context, org *Org, owner *Member, actor string) error
	OrgByID(ctx context.Context, id string) (*Org, error)
	OrgBySlug(ctx context.Context, slug string) (*Org, error)

	// Teams and members.
	CreateTeam(ctx context.Context, t *Team, actor string) error
	ListTeams(ctx context.Context, orgID string) ([]Team, error)
	CreateMember(ctx context.Context, m *Member, actor string) error
	MemberByID(ctx context.Context, orgID, id string) (*Member, error)
	MemberByLogin(ctx context.Context, orgID, login string) (*Member, error)
	ListMembers(ctx context.Context, orgID string) ([]Member, error)

	// API tokens (hash lookup is global: the token names its organisation).
	CreateToken(ctx context.Context, t *Token, actor string) error
	TokenByHash(ctx context.Context, hash []byte) (*Token, error)
	ListTokens(ctx context.Context, orgID, memberID string) ([]Token, error)
	RevokeToken(ctx context.Context, orgID, id, actor string) error
	// SetMemberActive deactivates (or reactivates) a member: a deactivated
	// member's tokens stop working.
	SetMemberActive(ctx context.Context, orgID, memberID string, active bool, actor string) error

	// Customers.
	UpsertCustomer(ctx context.Context, c *Customer, actor string) error
	CustomerByID(ctx context.Context, orgID, id string) (*Customer, error)
	// EraseCustomer erases a customer's personal data (EraseCustomer, the
	// rule) with one customer.erase entry; ExportCustomer feeds every row
	// that mentions them, section by section (see PersonalExport).
	EraseCustomer(ctx context.Context, orgID, customerID, actor string, at time.Time, idem *IdemWrite[*Erasure]) (*Erasure, error)
	ExportCustomer(ctx context.Context, orgID, customerID string, fn func(section string, v any) error) error
	ListCustomers(ctx context.Context, orgID string, page Page) ([]Customer, error)

	// Policies: PublishPolicy numbers the version (1, 2, ...), stores it and
	// makes it the active one, atomically.
	PublishPolicy(ctx context.Context, pv *PolicyVersion, idem *IdemWrite[*PolicyVersion]) error
	ActivePolicy(ctx context.Context, orgID string) (*PolicyVersion, error)
	PolicyByVersion(ctx context.Context, orgID string, version int) (*PolicyVersion, error)
	ListPolicies(ctx context.Context, orgID string) ([]PolicyVersion, error)

	// Decisions are written in batches: see DecideBatch. CommitBatch is
	// DecideBatch returning as soon as the batch is committed, with a wait
	// that returns once it is durable, so a writer can start its next
	// batch while the disk syncs this one.
	DecideBatch(ctx context.Context, q BatchQuery, decide func(*BatchState) (*BatchWrite, error)) error
	CommitBatch(ctx context.Context, q BatchQuery, decide func(*BatchState) (*BatchWrite, error)) (durable func() error, err error)

	GetDecision(ctx context.Context, orgID, id string) (*Decision, error)
	ListDecisions(ctx context.Context, orgID string, f DecisionFilter) ([]Decision, error)
	GetAct(ctx context.Context, orgID, id string) (*Act, error)
	ListActs(ctx context.Context, orgID string, f ActFilter) ([]Act, error)
	GetRefusal(ctx context.Context, orgID, id string) (*Refusal, error)
	ListRefusals(ctx context.Context, orgID string, f RefusalFilter) ([]Refusal, error)
	GetApproval(ctx context.Context, orgID, id string) (*Approval, error)
	ListBudgets(ctx context.Context, orgID string, f BudgetFilter) ([]BudgetAccount, error)

	// RecordReaction adds a reaction to an act. An employee reaction may be
	// recorded once per act (ECONFLICT "error.reaction_exists" after that).
	RecordReaction(ctx context.Context, r *Reaction, idem *Idempotency) error
	// RecordRefusal stores a refusal given outside the decision flow. A
	// non-nil customer is created in the same transaction if it is new.
	RecordRefusal(ctx context.Context, r *Refusal, c *Customer, idem *Idempotency) error

	// Idempotency returns the stored answer for a key, or ENOTFOUND. An
	// expired record may be returned until it is purged: the caller checks
	// Live.
	Idempotency(ctx context.Context, orgID, memberID, key string) (*Idempotency, error)
	// PurgeIdempotency deletes up to limit records expired at now.
	PurgeIdempotency(ctx context.Context, now time.Time, limit int) (int, error)

	// Control.
	ListAudit(ctx context.Context, orgID string, afterSeq int64, limit int) ([]AuditEntry, error)
	// LastAuditSeq is the seq of the organisation's last audit entry (0: none).
	LastAuditSeq(ctx context.Context, orgID string) (int64, error)
	// VerifyAudit is CheckAudit as a number: the first seq with a problem
	// (0 when the trail and its rows are intact) and how many entries it
	// checked.
	VerifyAudit(ctx context.Context, orgID string) (broken int64, checked int64, err error)
}

// Page is cursor pagination: items after the cursor (an id), at most Limit.
type Page struct {
	After string
	Limit int
}

// DecisionFilter narrows ListDecisions. Empty fields match everything.
type DecisionFilter struct {
	Page
	MemberID   string
	CustomerID string
	Action     string
	Outcome    string
	Since      time.Time
	Until      time.Time
}

// ActFilter narrows ListActs.
type ActFilter struct {
	Page
	MemberID   string
	CustomerID string
	Action     string
	Flagged    *bool
	Since      time.Time
	Until      time.Time
}

// RefusalFilter narrows ListRefusals.
type RefusalFilter struct {
	Page
	MemberID   string
	CustomerID string
	ReasonKind string
	Rule       string
	Since      time.Time
	Until      time.Time
}

// BudgetFilter narrows ListBudgets.
type BudgetFilter struct {
	BudgetID string
	Subject  string
	Period   string
}

// LedgerReport is the result of re-deriving the ledger.
type LedgerReport struct {
	Accounts int `json:"accounts"`
	Entries  int `json:"entries"`
	// MismatchCount counts every mismatch; Mismatches lists the first ones
	// (at most ledger.MaxMismatches).
	MismatchCount int              `json:"mismatch_count"`
	Mismatches    []LedgerMismatch `json:"mismatches"`
}

// OK reports whether the ledger checked clean.
func (r LedgerReport) OK() bool { return r.MismatchCount == 0 && len(r.Mismatches) == 0 }

// LedgerMismatch is one inconsistency found by CheckLedger.
type LedgerMismatch struct {
	Key    BudgetKey `json:"key"`
	What   string    `json:"what"`
	Want   int64     `json:"want"`
	Got    int64     `json:"got"`
	Detail string    `json:"detail,omitempty"`
}

// BatchQuery names what a batch of decisions needs to read and lock: the
// organisations (their active policy version), the budget accounts, the
// customers and the idempotency keys.
type BatchQuery struct {
	OrgIDs    []string
	Budgets   []OrgBudgetKey
	Customers []OrgRef
	Idem      []IdemKey
}

// OrgBudgetKey is a budget key within an organisation.
type OrgBudgetKey struct {
	OrgID string
	BudgetKey
}

// OrgRef is a customer reference within an organisation.
type OrgRef struct {
	OrgID string
	Ref   string
}

// IdemKey identifies an idempotency record.
type IdemKey struct {
	OrgID, MemberID, Key string
}

// BatchState is what DecideBatch read inside its transaction, with the
// budget accounts locked: the decide function evaluates against it.
type BatchState struct {
	PolicyVersions map[string]int // org id -> active version (0: none)
	Balances       map[OrgBudgetKey]Balance
	Customers      map[OrgRef]Customer
	Idem           map[IdemKey]Idempotency
}

// BatchWrite is everything a batch of decisions writes, committed together
// or not at all. Deltas are applied to the budget accounts (created when
// missing with the given scope, period kind and limit).
type BatchWrite struct {
	Customers []Customer
	Decisions []Decision
	Acts      []Act
	Refusals  []Refusal
	Approvals []Approval
	Ledger    []LedgerEntry
	Accounts  []AccountDelta
	Audit     []AuditEntry // Seq, PrevHash and Hash are filled by the store
	Idem      []Idempotency
	// Jobs are enqueued in the batch's transaction (JobStore): they exist
	// only if the decisions that asked for them committed.
	Jobs []Job
}

// AccountDelta changes one budget account.
type AccountDelta struct {
	OrgBudgetKey
	Scope      string
	PeriodKind string
	Limit      int64
	Posted     int64
	Pending    int64
}
