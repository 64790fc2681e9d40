package margen

import "encoding/json"

// Event types, the names webhooks subscribe to and the SSE stream sends.
const (
	EventDecisionMade      = "decision.made"
	EventApprovalRequested = "approval.requested"
	EventApprovalDecided   = "approval.decided"
	EventApprovalEscalated = "approval.escalated"
	EventRefusalRecorded   = "refusal.recorded"
	EventReactionRecorded  = "reaction.recorded"
	EventPolicyPublished   = "policy.published"
	// A customer answered a survey; a low answer is also survey.low.
	EventSurveyAnswered = "survey.answered"
	EventSurveyLow      = "survey.low"
	// A low answer's follow-up case was opened, escalated or closed.
	EventCaseOpened    = "case.opened"
	EventCaseEscalated = "case.escalated"
	EventCaseClosed    = "case.closed"
)

// EventTypesAll lists every event type, for validation and documentation.
var EventTypesAll = []string{EventDecisionMade, EventApprovalRequested, EventApprovalDecided,
	EventApprovalEscalated, EventRefusalRecorded, EventReactionRecorded, EventPolicyPublished,
	EventSurveyAnswered, EventSurveyLow, EventCaseOpened, EventCaseEscalated, EventCaseClosed}

// EventTypes maps an audit entry to the events it announces. Events are
// derived from the audit trail, so only committed changes are announced.
func EventTypes(a *AuditEntry) []string {
	switch a.Action {
	case "decision.create":
		var d struct {
			Outcome string `json:"outcome"`
		}
		json.Unmarshal(a.Data, &d)
		switch d.Outcome {
		case OutcomeNeedsApproval:
			return []string{EventDecisionMade, EventApprovalRequested}
		case OutcomeDenied:
			return []string{EventDecisionMade, EventRefusalRecorded}
		}
		return []string{EventDecisionMade}
	case "exception.request":
		return []string{EventApprovalRequested}
	case "approval.approved", "approval.rejected", "approval.expired":
		return []string{EventApprovalDecided}
	case "approval.escalated":
		return []string{EventApprovalEscalated}
	case "refusal.record":
		return []string{EventRefusalRecorded}
	case "reaction.record":
		return []string{EventReactionRecorded}
	case "policy.publish":
		return []string{EventPolicyPublished}
	case "case.open":
		return []string{EventCaseOpened}
	case "case.escalate":
		return []string{EventCaseEscalated}
	case "case.close":
		return []string{EventCaseClosed}
	case "survey.answer":
		var d struct {
			Low bool `json:"low"`
		}
		json.Unmarshal(a.Data, &d)
		if d.Low {
			return []string{EventSurveyAnswered, EventSurveyLow}
		}
		return []string{EventSurveyAnswered}
	}
	return nil
}

// EventData is what decision and approval audit entries carry so that events
// can be routed (to the approver role, to the requester) without a lookup.
type EventData struct {
	Outcome      string `json:"outcome,omitempty"`
	Action       string `json:"action,omitempty"`
	Amount       int64  `json:"amount"`
	Customer     string `json:"customer,omitempty"`
	Rule         string `json:"rule,omitempty"`
	Version      int    `json:"policy_version,omitempty"`
	Member       string `json:"member,omitempty"` // the requester
	Team         string `json:"team,omitempty"`   // the requester's team
	DecisionID   string `json:"decision_id,omitempty"`
	ActID        string `json:"act_id,omitempty"`
	ApprovalID   string `json:"approval_id,omitempty"`
	RefusalID    string `json:"refusal_id,omitempty"`
	ApproverRole string `json:"approver_role,omitempty"`
	FromRole     string `json:"from_role,omitempty"`
	Status       string `json:"status,omitempty"`
	DueAt        string `json:"due_at,omitempty"`
	DecidedBy    string `json:"decided_by,omitempty"`
	TimeToAnswer int64  `json:"time_to_answer_ms,omitempty"`
}
