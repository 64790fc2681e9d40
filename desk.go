package margen

import (
	"context"
	"time"
)

// Today is an organisation's day at a glance, for the manager's desk: the
// decisions taken in [since, until) by outcome, how many of the allowed
// ones needed no approval, the open approval requests and the latest
// reactions.
type Today struct {
	Outcomes      map[string]int64 // decisions by outcome
	Alone         int64            // allowed decisions taken without an approval request
	Pending       int64            // open approval requests (any day)
	OldestPending time.Time        // when the oldest open request was made (zero: none)
	Reactions     []ReactionSeen   // newest first
}

// ReactionSeen is a reaction with the act it answers.
type ReactionSeen struct {
	Reaction
	ActMember string // member id of the act
	ActAction string
	ActAmount int64
}

// AuditFilter pages an organisation's audit trail newest first: entries
// before seq Before (0: from the last), of one action if set.
type AuditFilter struct {
	Before int64
	Action string
	Limit  int
}

// DeskStore is what the manager's desk reads besides the Store contract.
type DeskStore interface {
	Today(ctx context.Context, orgID string, since, until time.Time, reactions int) (*Today, error)
	ListAuditNewest(ctx context.Context, orgID string, f AuditFilter) ([]AuditEntry, error)
	// CustomersByID returns the customers among ids, by id (ids not found
	// are absent): one query for the customers of a page's rows.
	CustomersByID(ctx context.Context, orgID string, ids []string) (map[string]*Customer, error)
	// RecentActsByCustomer returns each customer's n newest acts, newest
	// first, without their reactions (Reactions is nil).
	RecentActsByCustomer(ctx context.Context, orgID string, ids []string, n int) (map[string][]Act, error)
	// DecisionsByID returns the decisions among ids, by id (ids not found
	// are absent).
	DecisionsByID(ctx context.Context, orgID string, ids []string) (map[string]*Decision, error)
	// BudgetAccounts returns the accounts among keys, by key (accounts not
	// opened are absent).
	BudgetAccounts(ctx context.Context, orgID string, keys []BudgetKey) (map[BudgetKey]BudgetAccount, error)
	// Activity lists the organisation's acts (with their reactions) and
	// refusals merged, each with its customer, in ActivityFilter's order:
	// one query for the inbox's activity.
	Activity(ctx context.Context, orgID string, f ActivityFilter) ([]ActivityItem, error)
}

// Kinds of activity rows.
const (
	ActivityAct     = "act"
	ActivityRefusal = "refusal"
)

// ActivityFilter narrows Activity. Rows come newest first: by created_at
// descending, then by id descending (ids are unique across acts and
// refusals, their prefixes differ), a total order, so a page that starts
// strictly after the last row of the one before (Before) neither skips nor
// repeats a row, even among rows made at the same microsecond. Empty
// fields match everything.
type ActivityFilter struct {
	Kind     string // ActivityAct, ActivityRefusal, or "" for both
	Flagged  bool   // only flagged acts (so no refusal)
	MemberID string
	Action   string
	Since    time.Time // created_at at or after
	Until    time.Time // created_at before
	Before   ActivityCursor
	Limit    int
}

// ActivityCursor is a row's place in the activity's order: the rows after
// it are those made before At, or at At with a smaller id. The zero cursor
// starts from the newest row.
type ActivityCursor struct {
	At time.Time
	ID string
}

// ActivityItem is one row of the activity: an act or a refusal (one of
// them is nil) and its customer (nil when there is none).
type ActivityItem struct {
	Act      *Act
	Refusal  *Refusal
	Customer *Customer
}

// Cursor is the item's place in the activity's order.
func (x ActivityItem) Cursor() ActivityCursor {
	if x.Act != nil {
		return ActivityCursor{At: x.Act.CreatedAt, ID: x.Act.ID}
	}
	return ActivityCursor{At: x.Refusal.CreatedAt, ID: x.Refusal.ID}
}
