// Package margen holds the domain of margen: the entities a business works
// with (organisations, members, customers, policies, decisions, acts,
// refusals, budgets and their ledger, the audit trail), the one error type,
// and the Store contract that both database engines implement.
//
// It must never import infrastructure (SQL drivers, HTTP, the CLI): those
// packages depend on this one, not the other way round.
package margen

import (
	"encoding/json"
	"time"
)

// Access levels: what a member may do in margen itself (publish policy,
// manage members), independent of the latitude their policy role gives them
// at the counter.
const (
	AccessOwner      = "owner"
	AccessManager    = "manager"
	AccessSupervisor = "supervisor"
	AccessFrontline  = "frontline"
)

// AccessRank orders access levels; a higher rank includes the lower ones.
func AccessRank(access string) int {
	switch access {
	case AccessOwner:
		return 4
	case AccessManager:
		return 3
	case AccessSupervisor:
		return 2
	case AccessFrontline:
		return 1
	}
	return 0
}

// Decision outcomes.
const (
	OutcomeAllowed       = "allowed"
	OutcomeNeedsApproval = "needs_approval"
	OutcomeDenied        = "denied"
)

// Org is a tenant: a business with its currency, time zone and language.
type Org struct {
	ID        string    `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	Currency  string    `json:"currency"`
	Timezone  string    `json:"timezone"`
	Language  string    `json:"language"`
	CreatedAt time.Time `json:"created_at"`
}

// Team is a team or a site inside an organisation.
type Team struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"-"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Member is a person of the organisation: an owner, a manager, a supervisor
// or frontline staff. Role is their role in the latitude policy; Access is
// what they may administer in margen.
type Member struct {
	ID           string    `json:"id"`
	OrgID        string    `json:"-"`
	Login        string    `json:"login"`
	Name         string    `json:"name"`
	Access       string    `json:"access"`
	Role         string    `json:"role"`
	Team         string    `json:"team,omitempty"` // team slug
	Language     string    `json:"language,omitempty"`
	Active       bool      `json:"active"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Token is an API token; only its SHA-256 hash is stored.
type Token struct {
	ID        string     `json:"id"`
	OrgID     string     `json:"-"`
	MemberID  string     `json:"member_id"`
	Hash      []byte     `json:"-"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Customer is a person served at the counter, created on first sight by an
// external reference (a loyalty number, a phone, a table and date...).
type Customer struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"-"`
	Ref       string    `json:"ref"`
	Name      string    `json:"name,omitempty"`
	Contact   string    `json:"contact,omitempty"`
	Tags      []string  `json:"tags"`
	CreatedAt time.Time `json:"created_at"`
}

// PolicyVersion is one immutable version of an organisation's latitude
// policy. Exactly one version per organisation is active.
type PolicyVersion struct {
	OrgID     string    `json:"-"`
	Version   int       `json:"version"`
	Source    string    `json:"source"`
	Active    bool      `json:"active"`
	CreatedBy string    `json:"created_by"`
	Note      string    `json:"note,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// BudgetKey identifies one budget account: a policy budget, for one subject
// (member id, customer id, team slug or "org"), in one period ("2026-11-25",
// "2026-W48", "2026-11").
type BudgetKey struct {
	BudgetID string `json:"budget"`
	Subject  string `json:"subject"`
	Period   string `json:"period"`
}

// Less orders keys; accounts are always locked in this order.
func (k BudgetKey) Less(o BudgetKey) bool {
	if k.BudgetID != o.BudgetID {
		return k.BudgetID < o.BudgetID
	}
	if k.Subject != o.Subject {
		return k.Subject < o.Subject
	}
	return k.Period < o.Period
}

// Balance is what an account has used: Posted by allowed and approved acts,
// Pending held by approval requests still open.
type Balance struct {
	Posted  int64 `json:"posted"`
	Pending int64 `json:"pending"`
}

// Used is what counts against the limit.
func (b Balance) Used() int64 { return b.Posted + b.Pending }

// BudgetAccount is a budget account with its balance. Scope and
// PeriodKind come from the policy that opened it; Limit is the limit in
// force at the last write.
type BudgetAccount struct {
	BudgetKey
	Scope      string    `json:"scope"`
	PeriodKind string    `json:"period_kind"`
	Limit      int64     `json:"limit"`
	Balance              // posted, pending
	UpdatedAt  time.Time `json:"updated_at"`
}

// BudgetView is a budget as a decision saw it: what it allows, what had been
// used before the decision and what remains after it.
type BudgetView struct {
	Budget    string `json:"budget"`
	Scope     string `json:"scope"`
	Subject   string `json:"subject"`
	Period    string `json:"period"`
	Limit     int64  `json:"limit"`
	Used      int64  `json:"used"`
	Remaining int64  `json:"remaining"`
	Hard      bool   `json:"hard"`
}

// Ledger entry kinds: a posted amount is spent; a pending amount is held by
// an open approval request until it is posted or voided.
const (
	EntryPosted  = "posted"
	EntryPending = "pending"
)

// LedgerEntry moves Amount (signed) into the Kind column of one account.
// Every entry names the decision that caused it, so balances can be
// re-derived from decisions and checked.
type LedgerEntry struct {
	ID         string    `json:"id"`
	OrgID      string    `json:"-"`
	Key        BudgetKey `json:"key"`
	DecisionID string    `json:"decision_id"`
	Kind       string    `json:"kind"`
	Amount     int64     `json:"amount"`
	CreatedAt  time.Time `json:"created_at"`
}

// Explanation says in words why a decision came out as it did. Code selects
// the message; Args fill it in. Message is the rendered text in the
// member's language (set when answering, not stored).
type Explanation struct {
	Code    string         `json:"code"`
	Message string         `json:"message,omitempty"`
	Args    map[string]any `json:"args,omitempty"`
}

// Decision is one "¿puedo?": a member asking to take an action for a
// customer, and the verdict of the policy version in force.
type Decision struct {
	ID            string          `json:"id"`
	OrgID         string          `json:"-"`
	MemberID      string          `json:"member_id"`
	CustomerID    string          `json:"customer_id"`
	Action        string          `json:"action"`
	Amount        int64           `json:"amount"`
	Currency      string          `json:"currency"`
	Reason        string          `json:"reason,omitempty"`
	Context       json.RawMessage `json:"context,omitempty"`
	Outcome       string          `json:"outcome"`
	PolicyVersion int             `json:"policy_version"`
	Rule          string          `json:"rule,omitempty"`
	Explanation   Explanation     `json:"explanation"`
	Flagged       bool            `json:"flagged"`
	Budgets       []BudgetView    `json:"budgets"`
	ActID         string          `json:"act_id,omitempty"`
	ApprovalID    string          `json:"approval_id,omitempty"`
	RefusalID     string          `json:"refusal_id,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	// AfterTheFact says the member reported an act already done at the
	// counter (see docs/policy.md, "Acts already done").
	AfterTheFact bool `json:"after_the_fact,omitempty"`
	// Team is the member's team (slug) when the decision was made: a later
	// move to another team does not rewrite it.
	Team string `json:"team,omitempty"`
	// Next is what the member can do after this answer (ask for an
	// exception after a refusal); set when answering, never stored.
	Next *NextStep `json:"next,omitempty"`
}

// NextStep points a client to what it can do next, as data: the kind of
// step and the API request that takes it.
type NextStep struct {
	Kind   string `json:"kind"` // NextException
	Method string `json:"method"`
	Href   string `json:"href"`
}

// NextException: the member may ask for an exception.
const NextException = "exception"

// Act is an action of power taken for a customer: what, for whom, at what
// cost and why, with the reactions it drew.
type Act struct {
	ID         string    `json:"id"`
	OrgID      string    `json:"-"`
	DecisionID string    `json:"decision_id"`
	MemberID   string    `json:"member_id"`
	CustomerID string    `json:"customer_id"`
	Action     string    `json:"action"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	Reason     string    `json:"reason,omitempty"`
	Flagged    bool      `json:"flagged"`
	CreatedAt  time.Time `json:"created_at"`
	// AfterTheFact: reported after it was done (see Decision.AfterTheFact).
	AfterTheFact bool `json:"after_the_fact,omitempty"`
	// Team is the member's team (slug) when the act was recorded.
	Team      string     `json:"team,omitempty"`
	Reactions []Reaction `json:"reactions"`
}

// Reaction sources and sentiments.
const (
	SourceEmployee = "employee"
	SourceCustomer = "customer"

	SentimentPositive = "positive"
	SentimentNeutral  = "neutral"
	SentimentNegative = "negative"
)

// Reaction is the customer's reaction to an act: observed by the employee,
// or given by the customer through a survey.
type Reaction struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"-"`
	ActID     string    `json:"act_id"`
	Source    string    `json:"source"`
	Sentiment string    `json:"sentiment"`
	Note      string    `json:"note,omitempty"`
	MemberID  string    `json:"member_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Score is a numeric rating, 0..10 (MinScore..MaxScore), when one was
	// given: a customer's CSAT (1-5) or NPS (0-10) answer. Employee
	// reactions carry none.
	Score *int `json:"score,omitempty"`
}

// The range of Reaction.Score.
const (
	MinScore = 0
	MaxScore = 10
)

// Refusal reasons: why the customer could not be satisfied.
const (
	RefusalNotAllowed      = "not_allowed"
	RefusalNoRule          = "no_rule"
	RefusalOtherDepartment = "other_department"
	RefusalOther           = "other"
)

// How the customer left after a "no".
const (
	LeftAccepted   = "accepted"   // took an alternative, satisfied enough
	LeftNeutral    = "neutral"    // left without a clear reaction
	LeftUnhappy    = "unhappy"    // left annoyed
	LeftLost       = "lost"       // said or showed they will not come back
	LeftUnknown    = "unknown"    // not observed
	LeftEscalation = "escalation" // asked for a manager or filed a complaint
)

// Refusal is a "no" given to a customer: what they wanted, which rule or gap
// blocked it, and how they left. Refusals feed the friction report.
type Refusal struct {
	ID         string    `json:"id"`
	OrgID      string    `json:"-"`
	DecisionID string    `json:"decision_id,omitempty"`
	MemberID   string    `json:"member_id"`
	CustomerID string    `json:"customer_id,omitempty"`
	Action     string    `json:"action,omitempty"`
	Amount     int64     `json:"amount"`
	Wanted     string    `json:"wanted"`
	ReasonKind string    `json:"reason"`
	Rule       string    `json:"rule,omitempty"`
	Left       string    `json:"customer_left"`
	Note       string    `json:"note,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
)

// Approval kinds: a monetary request above a member's latitude, or an
// exception that no grant covers.
const (
	ApprovalKindAmount    = "amount"
	ApprovalKindException = "exception"
	// ApprovalKindRatification asks an approver to ratify an act above the
	// member's latitude that was already done (reported after the fact).
	ApprovalKindRatification = "ratification"
)

// Approval is a request for someone above the member's latitude to say yes.
// It holds the amount on the budgets it would charge until it is approved
// (posted), or rejected or expired (voided).
type Approval struct {
	ID           string          `json:"id"`
	OrgID        string          `json:"-"`
	DecisionID   string          `json:"decision_id"`
	Kind         string          `json:"kind"`
	MemberID     string          `json:"member_id"`
	CustomerID   string          `json:"customer_id"`
	Action       string          `json:"action,omitempty"`
	Amount       int64           `json:"amount"`
	Description  string          `json:"description,omitempty"`
	ApproverRole string          `json:"approver_role"`
	Level        int             `json:"level"` // 0 as first routed, +1 per escalation
	SLA          time.Duration   `json:"-"`
	DueAt        time.Time       `json:"due_at"`
	OnTimeout    string          `json:"on_timeout"`
	EscalateTo   string          `json:"escalate_to,omitempty"`
	Status       string          `json:"status"`
	DecidedBy    string          `json:"decided_by,omitempty"` // member id, or "system" for timeouts
	DecidedAt    *time.Time      `json:"decided_at,omitempty"`
	Comment      string          `json:"comment,omitempty"`
	ActID        string          `json:"act_id,omitempty"` // the act an approval created
	CreatedAt    time.Time       `json:"created_at"`
	History      []ApprovalEvent `json:"history,omitempty"`
}

// Approval event kinds, the history of a request.
const (
	EventRequested = "requested"
	EventEscalated = "escalated"
	EventApproved  = "approved"
	EventRejected  = "rejected"
	EventExpired   = "expired"
)

// ApprovalEvent is one step in an approval request's history.
type ApprovalEvent struct {
	ID         string    `json:"id"`
	ApprovalID string    `json:"approval_id"`
	Kind       string    `json:"kind"`
	Actor      string    `json:"actor"` // member id, or "system"
	FromRole   string    `json:"from_role,omitempty"`
	ToRole     string    `json:"to_role,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	At         time.Time `json:"at"`
}

// AuditEntry is one line of the append-only, hash-chained audit trail.
// Entries before the organisation's sealed seq (written before audit keys
// existed) have Hash = SHA-256(PrevHash || Seq || At || Actor || Action ||
// Subject || Data) (ChainHash); from it on, Hash is the HMAC-SHA256 of the
// same fields and Rows under the audit key (AuditKey.Hash).
type AuditEntry struct {
	OrgID    string          `json:"-"`
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Subject  string          `json:"subject"`
	Data     json.RawMessage `json:"data,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
	// Rows commits to the full content of the rows the entry's
	// transaction wrote: one line "table key digest" per row (see the
	// store's seal). Not shown by the API.
	Rows string `json:"-"`
}

// Idempotency records the first answer to a state-changing call made with
// an Idempotency-Key, so a retry gets the same answer until ExpiresAt.
// Response is opaque outside the HTTP layer, which encodes and decodes it;
// the store persists it with the write it answers.
type Idempotency struct {
	OrgID       string
	MemberID    string
	Key         string
	RequestHash string
	Response    []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// DefaultIdempotencyTTL is how long an idempotency record answers for its
// key when its writer names no expiry.
const DefaultIdempotencyTTL = 24 * time.Hour

// Live reports whether the record still answers for its key at now.
func (i *Idempotency) Live(now time.Time) bool { return now.Before(i.ExpiresAt) }

// IdemWrite asks a service to store an idempotency record with its write
// when the record's response depends on what the write produces: Record
// names the key and the request, and Respond renders the response from the
// write's result (type T) just before the write.
type IdemWrite[T any] struct {
	Record  Idempotency
	Respond func(T) ([]byte, error)
}

// For returns the record to store with a write whose result is v (nil for
// a nil IdemWrite).
func (w *IdemWrite[T]) For(v T) (*Idempotency, error) {
	if w == nil {
		return nil, nil
	}
	rec := w.Record
	b, err := w.Respond(v)
	if err != nil {
		return nil, &Error{Code: EINTERNAL, Key: "error.internal", Err: err}
	}
	rec.Response = b
	return &rec, nil
}

// AuditReport is the result of verifying an organisation's audit trail and
// the rows it seals (Store.CheckAudit).
type AuditReport struct {
	Entries    int64  `json:"entries"`     // entries that verified
	Broken     int64  `json:"broken"`      // first seq whose link does not verify, 0 when none
	SealedFrom int64  `json:"sealed_from"` // first entry under the audit key (0: not sealed)
	KeyID      string `json:"key_id"`
	// From, when not 0, is the seq of the checkpoint the check started
	// from (Store.CheckAuditFrom): the links up to it were vouched for by
	// the checkpoint and not re-walked, and only the rows committed after
	// it were checked.
	From         int64          `json:"from,omitempty"`
	Rows         int            `json:"rows"` // rows checked against their commitments
	ProblemCount int            `json:"problem_count"`
	Problems     []AuditProblem `json:"problems"` // the first ones
}

// OK reports whether the trail and every sealed row verified.
func (r AuditReport) OK() bool { return r.ProblemCount == 0 }

// AuditProblem is one finding of CheckAudit. What is "chain" (a link does
// not verify), "key" (the trail is sealed under another key), "unsealed",
// "changed" (a row differs from its commitment), "deleted" (a committed
// row is gone) or "uncommitted" (a row no entry commits to).
type AuditProblem struct {
	Table  string `json:"table,omitempty"`
	Key    string `json:"key,omitempty"`
	What   string `json:"what"`
	Seq    int64  `json:"seq,omitempty"` // the entry concerned
	Detail string `json:"detail"`
}
