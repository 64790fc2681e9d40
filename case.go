package margen

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// The closed loop: a low survey answer opens exactly one follow-up case,
// in the same transaction as the answer, routed like an approval request
// (to the member's supervisor: the role of the policy's default approval
// route, within the member's team first), with an SLA. A case nobody
// closes in time is escalated once to the owners by the approval SLA
// worker. The supervisor closes it with what was done, the outcome and
// how the customer reacted.

// Case statuses.
const (
	CaseOpen   = "open"
	CaseClosed = "closed"
)

// Case outcomes.
const (
	CaseResolved   = "resolved"   // the customer's problem was solved
	CaseUnresolved = "unresolved" // it could not be solved
	CaseNoContact  = "no_contact" // the customer could not be reached
)

// Customer reactions when a case is closed.
const (
	ReactionPositive = "positive"
	ReactionNeutral  = "neutral"
	ReactionNegative = "negative"
	ReactionUnknown  = "unknown"
)

// Case defaults and limits.
const (
	// DefaultCaseCSAT: a CSAT answer at or below it opens a case.
	DefaultCaseCSAT = 2
	// DefaultCaseNPS: an NPS answer at or below it opens a case.
	DefaultCaseNPS = 6
	// DefaultCaseSLA is how long a case waits before it escalates.
	DefaultCaseSLA = 24 * time.Hour
	// MaxCaseNote bounds what the supervisor writes, in bytes of UTF-8.
	MaxCaseNote = 2000
	// CaseRoleSupervisor is a case's route before escalation: the role of
	// the policy's default approval route (the member's supervisor).
	CaseRoleSupervisor = ""
	// CaseRoleOwner is a case's route after escalation.
	CaseRoleOwner = "owner"
)

// CaseRule is when a survey answer opens a case and how long it may wait.
// Zero fields take the defaults; a negative threshold opens no case on
// that scale.
type CaseRule struct {
	CSATMax int
	NPSMax  int
	SLA     time.Duration
}

// Normal fills the defaults.
func (r CaseRule) Normal() CaseRule {
	if r.CSATMax == 0 {
		r.CSATMax = DefaultCaseCSAT
	}
	if r.NPSMax == 0 {
		r.NPSMax = DefaultCaseNPS
	}
	if r.SLA <= 0 {
		r.SLA = DefaultCaseSLA
	}
	return r
}

// FollowUpCase is the follow-up of a low survey answer.
type FollowUpCase struct {
	ID          string     `json:"id"`
	OrgID       string     `json:"-"`
	AnswerID    string     `json:"answer_id"`
	ActID       string     `json:"act_id,omitempty"`
	MemberID    string     `json:"member_id,omitempty"` // who served the customer
	Team        string     `json:"team,omitempty"`
	Scale       string     `json:"scale"`
	Score       int        `json:"score"`
	Role        string     `json:"role"` // "" (the supervisor) or "owner" once escalated
	Status      string     `json:"status"`
	DueAt       time.Time  `json:"due_at"`
	EscalatedAt *time.Time `json:"escalated_at,omitempty"`
	Action      string     `json:"action,omitempty"`   // what was done
	Outcome     string     `json:"outcome,omitempty"`  // CaseResolved...
	Reaction    string     `json:"reaction,omitempty"` // how the customer reacted
	ClosedBy    string     `json:"closed_by,omitempty"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

// CaseFor is the rule that opens a case: the case a stored answer opens
// under r, or nil when its score is above the threshold.
func CaseFor(a *SurveyAnswer, r CaseRule) *FollowUpCase {
	r = r.Normal()
	limit := r.CSATMax
	if a.Scale == ScaleNPS {
		limit = r.NPSMax
	}
	if a.Score > limit {
		return nil
	}
	return &FollowUpCase{ID: NewID("case"), OrgID: a.OrgID, AnswerID: a.ID, ActID: a.ActID, MemberID: a.MemberID,
		Team: a.Team, Scale: a.Scale, Score: a.Score, Role: CaseRoleSupervisor, Status: CaseOpen,
		DueAt: a.CreatedAt.Add(r.SLA), CreatedAt: a.CreatedAt}
}

// CaseDue reports whether the SLA worker escalates c at now: open, never
// escalated, and past its due time.
func CaseDue(c *FollowUpCase, now time.Time) bool {
	return c.Status == CaseOpen && c.EscalatedAt == nil && !now.Before(c.DueAt)
}

// CaseClose is what the supervisor records when closing a case.
type CaseClose struct {
	Action   string `json:"action"`
	Outcome  string `json:"outcome"`
	Reaction string `json:"reaction"`
}

// Validate checks and trims a closing.
func (x *CaseClose) Validate() error {
	x.Action = strings.TrimSpace(x.Action)
	if x.Action == "" {
		return &Error{Code: EINVALID, Key: "cases.error.action", Field: "action", Args: map[string]any{"max": MaxCaseNote}}
	}
	if len(x.Action) > MaxCaseNote {
		return &Error{Code: ETOOLARGE, Key: "cases.error.action", Field: "action", Args: map[string]any{"max": MaxCaseNote}}
	}
	if !utf8.ValidString(x.Action) || strings.IndexByte(x.Action, 0) >= 0 {
		return &Error{Code: EINVALID, Key: "cases.error.text", Field: "action"}
	}
	switch x.Outcome {
	case CaseResolved, CaseUnresolved, CaseNoContact:
	default:
		return Invalid("outcome", "error.invalid_value", "field", "outcome", "allowed", "resolved, unresolved, no_contact")
	}
	switch x.Reaction {
	case ReactionPositive, ReactionNeutral, ReactionNegative, ReactionUnknown:
	default:
		return Invalid("reaction", "error.invalid_value", "field", "reaction",
			"allowed", "positive, neutral, negative, unknown")
	}
	return nil
}

// CaseFilter narrows ListCases. Empty fields match all.
type CaseFilter struct {
	Page
	Status   string
	MemberID string
	Team     string
	ActID    string
	AnswerID string
}

// CaseStore is what follow-up cases need of the database. Cases are opened
// by SurveyStore.AnswerSurvey (under SurveyLimits.Cases).
type CaseStore interface {
	GetCase(ctx context.Context, orgID, id string) (*FollowUpCase, error)
	ListCases(ctx context.Context, orgID string, f CaseFilter) ([]FollowUpCase, error)
	// CloseCase closes an open case exactly once (ECONFLICT
	// "cases.closed" when it already is).
	CloseCase(ctx context.Context, orgID, id string, x CaseClose, actor string, at time.Time) (*FollowUpCase, error)
	// DueCases lists open, never-escalated cases of every organisation due
	// at or before now.
	DueCases(ctx context.Context, now time.Time, limit int) ([]FollowUpCase, error)
	// EscalateCase routes a due case to the owners exactly once, even when
	// several processes sweep (ECONFLICT when it no longer is due).
	EscalateCase(ctx context.Context, orgID, id string, now time.Time) (*FollowUpCase, error)
}
