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
	// CaseRoleOwner is a case's route at the end of its chain.
	CaseRoleOwner = "owner"
	// MinCaseSLA and MaxCaseSLA bound an organisation's case SLA.
	MinCaseSLA = 5 * time.Minute
	MaxCaseSLA = 30 * 24 * time.Hour
	// MaxCaseSteps bounds a case's escalations (a policy's chain is
	// shorter; a cycle in it cannot run forever).
	MaxCaseSteps = 8
)

// CaseRule is when a survey answer opens a case and how long it may wait.
// Zero fields take the defaults; a negative threshold opens no case on
// that scale.
type CaseRule struct {
	CSATMax int
	NPSMax  int
	SLA     time.Duration
	// Exact: the thresholds are as an organisation set them, 0 included
	// (NPS 0: only a 0 opens a case), not defaults to fill.
	Exact bool
}

// Normal fills the defaults.
func (r CaseRule) Normal() CaseRule {
	if r.CSATMax == 0 && !r.Exact {
		r.CSATMax = DefaultCaseCSAT
	}
	if r.NPSMax == 0 && !r.Exact {
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
	Role        string     `json:"role"`              // "" (the supervisor), then the roles of its escalations, up to "owner"
	Level       int        `json:"level"`             // how many times it escalated
	Earlier     []string   `json:"earlier,omitempty"` // the roles it was routed to before, oldest first
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

// CaseDue reports whether the SLA worker escalates c at now: open, not yet
// with the owners, and past its due time.
func CaseDue(c *FollowUpCase, now time.Time) bool {
	return c.Status == CaseOpen && c.Role != CaseRoleOwner && !now.Before(c.DueAt)
}

// CaseStep is one escalation of a case: from the role it was routed to
// (as stored: "" is the default route's approver) to the next one, at a
// time, with the new due time. Level is the case's level before the step;
// a case has at most one step per level.
type CaseStep struct {
	ID       string    `json:"id"`
	OrgID    string    `json:"-"`
	CaseID   string    `json:"case_id"`
	Level    int       `json:"level"`
	FromRole string    `json:"from_role"`
	ToRole   string    `json:"to_role"`
	At       time.Time `json:"at"`
	DueAt    time.Time `json:"due_at"`
}

// CaseEscalation is what one escalation step writes: the case as it is
// after the step (role, level, earlier roles, escalated_at, due_at), the
// step and its audit data. The store applies it only if the case is still
// as the rule read it (open, at the same role and due time).
type CaseEscalation struct {
	Case  FollowUpCase
	Step  CaseStep
	Event FollowUpChanged
}

// CaseSettings are an organisation's own thresholds and SLA for follow-up
// cases; a nil threshold or a zero SLA takes the server's flag. A
// threshold of -1 opens no case on that scale.
type CaseSettings struct {
	CSATMax   *int          `json:"csat_max"`
	NPSMax    *int          `json:"nps_max"`
	SLA       time.Duration `json:"-"`
	UpdatedAt time.Time     `json:"updated_at,omitzero"`
}

// Validate checks the settings: CSAT 1 to 4, NPS 0 to 9 (or -1, none),
// SLA zero (the default) or between MinCaseSLA and MaxCaseSLA.
func (x CaseSettings) Validate() error {
	if p := x.Problems(); len(p) > 0 {
		return p[0]
	}
	return nil
}

// Problems lists every field Validate would refuse, each an Invalid error
// naming its field (csat_max, nps_max, sla), so a form can mark them all.
func (x CaseSettings) Problems() []*Error {
	var out []*Error
	if v := x.CSATMax; v != nil && *v != -1 && (*v < 1 || *v > 4) {
		out = append(out, Invalid("csat_max", "cases2.error.csat", "min", 1, "max", 4))
	}
	if v := x.NPSMax; v != nil && *v != -1 && (*v < 0 || *v > 9) {
		out = append(out, Invalid("nps_max", "cases2.error.nps", "min", 0, "max", 9))
	}
	if x.SLA != 0 && (x.SLA < MinCaseSLA || x.SLA > MaxCaseSLA) {
		out = append(out, InvalidSLA())
	}
	return out
}

// InvalidSLA is the answer to an SLA that is not a duration between
// MinCaseSLA and MaxCaseSLA.
func InvalidSLA() *Error {
	return Invalid("sla", "cases2.error.sla", "min", int(MinCaseSLA/time.Minute), "max", int(MaxCaseSLA/time.Hour))
}

// Over is the rule an organisation with these settings applies: its own
// values where it set them, def (the server's flags) elsewhere.
func (x CaseSettings) Over(def CaseRule) CaseRule {
	r := def.Normal()
	r.Exact = true
	if x.CSATMax != nil {
		r.CSATMax = *x.CSATMax
	}
	if x.NPSMax != nil {
		r.NPSMax = *x.NPSMax
	}
	if x.SLA > 0 {
		r.SLA = x.SLA
	}
	return r
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
	// EscalateCase applies one escalation step: under the organisation's
	// lock it reads the case (with its level and earlier roles), asks plan
	// for the write (a pure rule: approval.CaseEscalator) and applies it
	// only if the case is still as read, so each step happens exactly once
	// even when several processes sweep (ECONFLICT when it moved on).
	EscalateCase(ctx context.Context, orgID, id string, plan func(*FollowUpCase) (*CaseEscalation, error)) (*FollowUpCase, error)
	// CaseSettings returns the organisation's own case settings (none set:
	// the zero value).
	CaseSettings(ctx context.Context, orgID string) (CaseSettings, error)
	// SetCaseSettings stores them, audited (case.settings).
	SetCaseSettings(ctx context.Context, orgID string, x CaseSettings, actor string) error
}
