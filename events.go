package margen

import (
	"encoding/json"
	"fmt"
	"time"
)

// EventType names an event: what webhooks subscribe to and the live stream
// (GET /api/v1/events) sends. Each type has one payload struct (see
// EventPayload); both are part of the public contract, documented in
// docs/api.md ("Events and webhooks: the vocabulary"), which a test keeps
// in step with this file.
type EventType string

// Event types.
const (
	EventDecisionMade      EventType = "decision.made"
	EventApprovalRequested EventType = "approval.requested"
	EventApprovalDecided   EventType = "approval.decided"
	EventApprovalEscalated EventType = "approval.escalated"
	EventRefusalRecorded   EventType = "refusal.recorded"
	EventReactionRecorded  EventType = "reaction.recorded"
	EventPolicyPublished   EventType = "policy.published"
	EventSurveyAnswered    EventType = "survey.answered"
	EventSurveyLow         EventType = "survey.low"
	EventCaseOpened        EventType = "case.opened"
	EventCaseEscalated     EventType = "case.escalated"
	EventCaseClosed        EventType = "case.closed"
	EventCustomerErased    EventType = "customer.erased"
)

// EventTypeDoc describes one event type: when it fires and from which
// audit actions it is derived.
type EventTypeDoc struct {
	Type EventType
	From []AuditAction
	Doc  string
	// Payload is a zero value of the type's payload, for documentation.
	Payload EventPayload
}

// EventVocabulary is the registry of every event type, in the order
// docs/api.md lists them.
var EventVocabulary = []EventTypeDoc{
	{EventDecisionMade, []AuditAction{ActionDecisionCreate},
		"a decision is recorded, whatever its outcome", DecisionMade{}},
	{EventApprovalRequested, []AuditAction{ActionDecisionCreate, ActionExceptionRequest},
		"a decision needs approval (it comes with its `decision.made`, same `seq`), or an exception is requested", ApprovalRequested{}},
	{EventApprovalDecided, []AuditAction{ActionApprovalApproved, ActionApprovalRejected, ActionApprovalExpired},
		"an approver approves or rejects a request, or it expires when its SLA passes (`status`)", ApprovalDecided{}},
	{EventApprovalEscalated, []AuditAction{ActionApprovalEscalated},
		"a request's SLA passes and it moves on to another role (`from_role` → `approver_role`)", ApprovalEscalated{}},
	{EventRefusalRecorded, []AuditAction{ActionDecisionCreate, ActionRefusalRecord},
		"a decision is denied (it comes with its `decision.made`, same `seq`), or a refusal is recorded by hand", RefusalRecorded{}},
	{EventReactionRecorded, []AuditAction{ActionReactionRecord},
		"a reaction to an act is recorded", ReactionRecorded{}},
	{EventPolicyPublished, []AuditAction{ActionPolicyPublish},
		"a policy version is published", PolicyPublished{}},
	{EventSurveyAnswered, []AuditAction{ActionSurveyAnswer},
		"a customer answers a survey", SurveyAnswered{}},
	{EventSurveyLow, []AuditAction{ActionSurveyAnswer},
		"a customer's survey answer is low (it comes with its `survey.answered`, same `seq`)", SurveyLow{}},
	{EventCaseOpened, []AuditAction{ActionCaseOpen},
		"a low survey answer opens its follow-up case (same transaction as the answer)", FollowUpOpened{}},
	{EventCaseEscalated, []AuditAction{ActionCaseEscalate},
		"an open case's SLA passes and it moves one step up the approval chain (each step once), up to the owners", FollowUpEscalated{}},
	{EventCaseClosed, []AuditAction{ActionCaseClose},
		"a case is closed with what was done, the outcome and how the customer reacted", FollowUpClosed{}},
	{EventCustomerErased, []AuditAction{ActionCustomerErase},
		"a customer's personal data is erased: receivers erase their copies (owners and the manager who erased see it live)", CustomerErased{}},
}

// EventTypesAll lists every event type, for validation and documentation.
var EventTypesAll = func() []EventType {
	out := make([]EventType, len(EventVocabulary))
	for i, d := range EventVocabulary {
		out[i] = d.Type
	}
	return out
}()

// EventPayload is the data of one event: one struct per event type.
type EventPayload interface {
	EventType() EventType
	// Route is what deciding who may see the event needs.
	Route() EventRoute
}

// EventRoute says whom an event concerns, for approval.Service.Visible and
// the web pages' streams.
type EventRoute struct {
	Member       string // the member the event is about (the requester)
	ApprovalID   string
	ApproverRole string // the role the request is routed to (or was, once answered)
	FromRole     string // the role an escalated request left
	// Earlier are the roles a follow-up case was routed to before (as
	// stored: "" is the default approval route's approver).
	Earlier []string
}

// DecisionMade is the payload of decision.made.
type DecisionMade struct {
	DecisionID    string `json:"decision_id" doc:"the decision"`
	Outcome       string `json:"outcome" doc:"allowed, denied or needs_approval"`
	Action        string `json:"action" doc:"the policy's action id"`
	Amount        int64  `json:"amount" doc:"in minor units of the organisation's currency"`
	Customer      string `json:"customer,omitempty" doc:"customer id"`
	Rule          string `json:"rule,omitempty" doc:"the rule that decided"`
	PolicyVersion int    `json:"policy_version" doc:"the policy version that decided"`
	Member        string `json:"member" doc:"the member who asked"`
	Team          string `json:"team,omitempty" doc:"the member's team at the time"`
	ActID         string `json:"act_id,omitempty" doc:"the act, when allowed"`
	ApprovalID    string `json:"approval_id,omitempty" doc:"the approval request, when it needs approval"`
	RefusalID     string `json:"refusal_id,omitempty" doc:"the refusal, when denied"`
}

// ApprovalRequested is the payload of approval.requested.
type ApprovalRequested struct {
	ApprovalID    string `json:"approval_id" doc:"the request"`
	DecisionID    string `json:"decision_id" doc:"its decision (outcome needs_approval)"`
	Action        string `json:"action" doc:"the policy's action id, or exception"`
	Amount        int64  `json:"amount" doc:"in minor units"`
	Customer      string `json:"customer,omitempty" doc:"customer id"`
	Rule          string `json:"rule,omitempty" doc:"the rule that asked for approval"`
	PolicyVersion int    `json:"policy_version" doc:"the policy version that decided"`
	Member        string `json:"member" doc:"the requester"`
	Team          string `json:"team,omitempty" doc:"the requester's team at the time"`
	ApproverRole  string `json:"approver_role" doc:"the role that may answer"`
	DueAt         string `json:"due_at" doc:"RFC 3339: when the SLA passes"`
}

// ApprovalDecided is the payload of approval.decided.
type ApprovalDecided struct {
	ApprovalID   string `json:"approval_id" doc:"the request"`
	DecisionID   string `json:"decision_id" doc:"its decision"`
	Status       string `json:"status" doc:"approved, rejected or expired"`
	Action       string `json:"action" doc:"the policy's action id, or exception"`
	Amount       int64  `json:"amount" doc:"in minor units"`
	Customer     string `json:"customer,omitempty" doc:"customer id"`
	Member       string `json:"member" doc:"the requester"`
	Team         string `json:"team,omitempty" doc:"the requester's team at the time of the request"`
	ApproverRole string `json:"approver_role" doc:"the role the request was routed to"`
	DecidedBy    string `json:"decided_by" doc:"the member who answered, or system when it expired"`
	TimeToAnswer int64  `json:"time_to_answer_ms" doc:"milliseconds from the request to the answer"`
	ActID        string `json:"act_id,omitempty" doc:"the act created, when approved"`
}

// ApprovalEscalated is the payload of approval.escalated.
type ApprovalEscalated struct {
	ApprovalID   string `json:"approval_id" doc:"the request"`
	DecisionID   string `json:"decision_id" doc:"its decision"`
	Action       string `json:"action" doc:"the policy's action id, or exception"`
	Amount       int64  `json:"amount" doc:"in minor units"`
	Customer     string `json:"customer,omitempty" doc:"customer id"`
	Member       string `json:"member" doc:"the requester"`
	Team         string `json:"team,omitempty" doc:"the requester's team at the time of the request"`
	FromRole     string `json:"from_role" doc:"the role it was routed to"`
	ApproverRole string `json:"approver_role" doc:"the role it is routed to now"`
	DueAt        string `json:"due_at" doc:"RFC 3339: when the new SLA passes"`
}

// RefusalRecorded is the payload of refusal.recorded.
type RefusalRecorded struct {
	RefusalID    string `json:"refusal_id" doc:"the refusal"`
	DecisionID   string `json:"decision_id,omitempty" doc:"the denied decision (absent for a refusal recorded by hand)"`
	Action       string `json:"action" doc:"what was asked for"`
	Amount       int64  `json:"amount" doc:"in minor units"`
	Customer     string `json:"customer,omitempty" doc:"customer id"`
	Rule         string `json:"rule,omitempty" doc:"the rule that refused"`
	Member       string `json:"member" doc:"the member who refused (or whose request was denied)"`
	Reason       string `json:"reason,omitempty" doc:"not_allowed, no_rule, other_department or other (a refusal recorded by hand)"`
	CustomerLeft string `json:"customer_left,omitempty" doc:"how the customer left: accepted, neutral, unhappy, lost, unknown or escalation (a refusal recorded by hand)"`
}

// ReactionRecorded is the payload of reaction.recorded.
type ReactionRecorded struct {
	ReactionID string `json:"reaction_id" doc:"the reaction"`
	ActID      string `json:"act_id" doc:"the act reacted to"`
	Source     string `json:"source" doc:"employee (observed) or customer (a survey)"`
	Sentiment  string `json:"sentiment" doc:"positive, neutral or negative"`
}

// PolicyPublished is the payload of policy.published.
type PolicyPublished struct {
	Version      int    `json:"version" doc:"the new active version"`
	Note         string `json:"note" doc:"the publisher's note"`
	SourceSHA256 string `json:"source_sha256" doc:"hex SHA-256 of the policy's source"`
}

// SurveyAnswered is the payload of survey.answered.
type SurveyAnswered struct {
	AnswerID string `json:"answer_id" doc:"the answer"`
	ActID    string `json:"act_id,omitempty" doc:"the act answered about"`
	LinkID   string `json:"link_id,omitempty" doc:"the survey link answered"`
	PointID  string `json:"point_id,omitempty" doc:"the standing survey point answered"`
	Member   string `json:"member,omitempty" doc:"the member who served"`
	Team     string `json:"team,omitempty" doc:"the member's team"`
	Scale    string `json:"scale" doc:"csat (1 to 5) or nps (0 to 10)"`
	Score    int    `json:"score" doc:"the answer on that scale"`
	Low      bool   `json:"low" doc:"the answer is low"`
}

// SurveyLow is the payload of survey.low: the same fields as
// survey.answered.
type SurveyLow SurveyAnswered

// SurveyAudit is the audit data of survey.answer.
type SurveyAudit struct {
	ActID   string `json:"act_id"`
	LinkID  string `json:"link_id"`
	Low     bool   `json:"low"`
	Member  string `json:"member"`
	PointID string `json:"point_id"`
	Scale   string `json:"scale"`
	Score   int    `json:"score"`
	Team    string `json:"team"`
}

// FollowUpChanged is the payload of the follow-up case events (case.opened,
// case.escalated, case.closed), and the audit data of their actions.
type FollowUpChanged struct {
	CaseID       string   `json:"case_id" doc:"the follow-up case"`
	AnswerID     string   `json:"answer_id" doc:"the low survey answer that opened it"`
	ActID        string   `json:"act_id,omitempty" doc:"the act answered about"`
	Member       string   `json:"member,omitempty" doc:"the member who served the customer"`
	Team         string   `json:"team,omitempty" doc:"the member's team"`
	ApproverRole string   `json:"approver_role" doc:"the role it is routed to: empty for the default approval route's approver, then the roles of its escalations, up to owner"`
	FromRole     string   `json:"from_role,omitempty" doc:"the role an escalation step left (case.escalated)"`
	Earlier      []string `json:"earlier,omitempty" doc:"the roles it was routed to before, oldest first"`
	Level        int      `json:"level,omitempty" doc:"how many times it escalated"`
	Status       string   `json:"status" doc:"open or closed"`
	Scale        string   `json:"scale" doc:"csat (1 to 5) or nps (0 to 10)"`
	Score        int      `json:"score" doc:"the low answer on that scale"`
	DueAt        string   `json:"due_at" doc:"RFC 3339: when its SLA passes"`
	Outcome      string   `json:"outcome,omitempty" doc:"resolved, unresolved or no_contact (closed)"`
	Reaction     string   `json:"reaction,omitempty" doc:"how the customer reacted: positive, neutral or negative (closed)"`
}

// FollowUpOpened is the payload of case.opened.
type FollowUpOpened FollowUpChanged

// FollowUpEscalated is the payload of case.escalated.
type FollowUpEscalated FollowUpChanged

// FollowUpClosed is the payload of case.closed.
type FollowUpClosed FollowUpChanged

// EventType implements EventPayload.
func (FollowUpOpened) EventType() EventType { return EventCaseOpened }

// EventType implements EventPayload.
func (FollowUpEscalated) EventType() EventType { return EventCaseEscalated }

// EventType implements EventPayload.
func (FollowUpClosed) EventType() EventType { return EventCaseClosed }

// Route implements EventPayload.
func (p FollowUpOpened) Route() EventRoute {
	return EventRoute{Member: p.Member, ApproverRole: p.ApproverRole, FromRole: p.FromRole, Earlier: p.Earlier}
}

// Route implements EventPayload.
func (p FollowUpEscalated) Route() EventRoute {
	return EventRoute{Member: p.Member, ApproverRole: p.ApproverRole, FromRole: p.FromRole, Earlier: p.Earlier}
}

// Route implements EventPayload.
func (p FollowUpClosed) Route() EventRoute {
	return EventRoute{Member: p.Member, ApproverRole: p.ApproverRole, FromRole: p.FromRole, Earlier: p.Earlier}
}

// EventType implements EventPayload.
func (SurveyAnswered) EventType() EventType { return EventSurveyAnswered }

// EventType implements EventPayload.
func (SurveyLow) EventType() EventType { return EventSurveyLow }

// Route implements EventPayload.
func (p SurveyAnswered) Route() EventRoute { return EventRoute{Member: p.Member} }

// Route implements EventPayload.
func (p SurveyLow) Route() EventRoute { return EventRoute{Member: p.Member} }

// EventType implements EventPayload.
func (DecisionMade) EventType() EventType { return EventDecisionMade }

// EventType implements EventPayload.
func (ApprovalRequested) EventType() EventType { return EventApprovalRequested }

// EventType implements EventPayload.
func (ApprovalDecided) EventType() EventType { return EventApprovalDecided }

// EventType implements EventPayload.
func (ApprovalEscalated) EventType() EventType { return EventApprovalEscalated }

// EventType implements EventPayload.
func (RefusalRecorded) EventType() EventType { return EventRefusalRecorded }

// EventType implements EventPayload.
func (ReactionRecorded) EventType() EventType { return EventReactionRecorded }

// EventType implements EventPayload.
func (PolicyPublished) EventType() EventType { return EventPolicyPublished }

// Route implements EventPayload.
func (p DecisionMade) Route() EventRoute {
	return EventRoute{Member: p.Member, ApprovalID: p.ApprovalID}
}

// Route implements EventPayload.
func (p ApprovalRequested) Route() EventRoute {
	return EventRoute{Member: p.Member, ApprovalID: p.ApprovalID, ApproverRole: p.ApproverRole}
}

// Route implements EventPayload.
func (p ApprovalDecided) Route() EventRoute {
	return EventRoute{Member: p.Member, ApprovalID: p.ApprovalID, ApproverRole: p.ApproverRole}
}

// Route implements EventPayload.
func (p ApprovalEscalated) Route() EventRoute {
	return EventRoute{Member: p.Member, ApprovalID: p.ApprovalID, ApproverRole: p.ApproverRole, FromRole: p.FromRole}
}

// Route implements EventPayload.
func (p RefusalRecorded) Route() EventRoute { return EventRoute{Member: p.Member} }

// Route implements EventPayload.
func (ReactionRecorded) Route() EventRoute { return EventRoute{} }

// Route implements EventPayload.
func (PolicyPublished) Route() EventRoute { return EventRoute{} }

// CustomerErased is the payload of customer.erased.
type CustomerErased struct {
	Customer string         `json:"customer" doc:"the erased customer's id"`
	Rows     map[string]int `json:"rows" doc:"rows changed per table"`
}

// EventType implements EventPayload.
func (CustomerErased) EventType() EventType { return EventCustomerErased }

// Route implements EventPayload: an erasure concerns no member (owners and
// the actor see it).
func (CustomerErased) Route() EventRoute { return EventRoute{} }

// EventData is the audit data of decision, exception and approval entries
// (decision.create, exception.request, approval.*): what their events are
// derived from, so it carries what routing needs.
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

// RefusalAudit is the audit data of refusal.record. (Fields in the order of
// their JSON names: entries written before it was a struct were maps.)
type RefusalAudit struct {
	Action       string `json:"action"`
	Amount       int64  `json:"amount"`
	CustomerLeft string `json:"customer_left"`
	Reason       string `json:"reason"`
	Rule         string `json:"rule"`
}

// ReactionAudit is the audit data of reaction.record.
type ReactionAudit struct {
	ActID     string `json:"act_id"`
	Sentiment string `json:"sentiment"`
	Source    string `json:"source"`
}

// PolicyAudit is the audit data of policy.publish.
type PolicyAudit struct {
	Note         string `json:"note"`
	SourceSHA256 string `json:"source_sha256"`
	Version      int    `json:"version"`
}

// EventsOf returns the events an audit entry announces, each with its
// typed payload, in a fixed order (none for actions that announce
// nothing). Events are derived from the audit trail, so only committed
// changes are announced. It fails when the entry's data does not decode
// into what its action writes: callers log it with the entry's seq, or
// stop.
func EventsOf(e *AuditEntry) ([]EventPayload, error) {
	var out []EventPayload
	var err error
	switch e.Action {
	case ActionDecisionCreate:
		var d EventData
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, DecisionMade{DecisionID: d.DecisionID, Outcome: d.Outcome, Action: d.Action,
				Amount: d.Amount, Customer: d.Customer, Rule: d.Rule, PolicyVersion: d.Version, Member: d.Member,
				Team: d.Team, ActID: d.ActID, ApprovalID: d.ApprovalID, RefusalID: d.RefusalID})
			switch d.Outcome {
			case OutcomeNeedsApproval:
				out = append(out, requested(&d))
			case OutcomeDenied:
				out = append(out, RefusalRecorded{RefusalID: d.RefusalID, DecisionID: d.DecisionID, Action: d.Action,
					Amount: d.Amount, Customer: d.Customer, Rule: d.Rule, Member: d.Member})
			}
		}
	case ActionExceptionRequest:
		var d EventData
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, requested(&d))
		}
	case ActionApprovalApproved, ActionApprovalRejected, ActionApprovalExpired:
		var d EventData
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, ApprovalDecided{ApprovalID: d.ApprovalID, DecisionID: d.DecisionID, Status: d.Status,
				Action: d.Action, Amount: d.Amount, Customer: d.Customer, Member: d.Member, Team: d.Team,
				ApproverRole: d.ApproverRole, DecidedBy: d.DecidedBy, TimeToAnswer: d.TimeToAnswer, ActID: d.ActID})
		}
	case ActionApprovalEscalated:
		var d EventData
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, ApprovalEscalated{ApprovalID: d.ApprovalID, DecisionID: d.DecisionID, Action: d.Action,
				Amount: d.Amount, Customer: d.Customer, Member: d.Member, Team: d.Team, FromRole: d.FromRole,
				ApproverRole: d.ApproverRole, DueAt: d.DueAt})
		}
	case ActionRefusalRecord:
		var d RefusalAudit
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, RefusalRecorded{RefusalID: e.Subject, Action: d.Action, Amount: d.Amount, Rule: d.Rule,
				Member: e.Actor, Reason: d.Reason, CustomerLeft: d.CustomerLeft})
		}
	case ActionReactionRecord:
		var d ReactionAudit
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, ReactionRecorded{ReactionID: e.Subject, ActID: d.ActID, Source: d.Source, Sentiment: d.Sentiment})
		}
	case ActionSurveyAnswer:
		var d SurveyAudit
		if err = decodeAudit(e, &d); err == nil {
			a := SurveyAnswered{AnswerID: e.Subject, ActID: d.ActID, LinkID: d.LinkID, PointID: d.PointID,
				Member: d.Member, Team: d.Team, Scale: d.Scale, Score: d.Score, Low: d.Low}
			out = append(out, a)
			if d.Low {
				out = append(out, SurveyLow(a))
			}
		}
	case ActionCaseOpen, ActionCaseEscalate, ActionCaseClose:
		var d FollowUpChanged
		if err = decodeAudit(e, &d); err == nil {
			switch e.Action {
			case ActionCaseOpen:
				out = append(out, FollowUpOpened(d))
			case ActionCaseEscalate:
				out = append(out, FollowUpEscalated(d))
			default:
				out = append(out, FollowUpClosed(d))
			}
		}
	case ActionCustomerErase:
		var d ErasureAudit
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, CustomerErased{Customer: e.Subject, Rows: d.Rows})
		}
	case ActionPolicyPublish:
		var d PolicyAudit
		if err = decodeAudit(e, &d); err == nil {
			out = append(out, PolicyPublished{Version: d.Version, Note: d.Note, SourceSHA256: d.SourceSHA256})
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DecodePayload decodes the payload of an event of type t (the "data" of
// a stream event or of a webhook body; fields it does not know, such as a
// webhook's seq, actor and subject, are ignored): for Go receivers and
// tests.
func DecodePayload(t EventType, data []byte) (EventPayload, error) {
	var p EventPayload
	var err error
	switch t {
	case EventDecisionMade:
		p, err = decodeAs[DecisionMade](data)
	case EventApprovalRequested:
		p, err = decodeAs[ApprovalRequested](data)
	case EventApprovalDecided:
		p, err = decodeAs[ApprovalDecided](data)
	case EventApprovalEscalated:
		p, err = decodeAs[ApprovalEscalated](data)
	case EventRefusalRecorded:
		p, err = decodeAs[RefusalRecorded](data)
	case EventReactionRecorded:
		p, err = decodeAs[ReactionRecorded](data)
	case EventPolicyPublished:
		p, err = decodeAs[PolicyPublished](data)
	case EventSurveyAnswered:
		p, err = decodeAs[SurveyAnswered](data)
	case EventSurveyLow:
		p, err = decodeAs[SurveyLow](data)
	case EventCaseOpened:
		p, err = decodeAs[FollowUpOpened](data)
	case EventCaseEscalated:
		p, err = decodeAs[FollowUpEscalated](data)
	case EventCaseClosed:
		p, err = decodeAs[FollowUpClosed](data)
	case EventCustomerErased:
		p, err = decodeAs[CustomerErased](data)
	default:
		return nil, fmt.Errorf("unknown event type %q", t)
	}
	if err != nil {
		return nil, fmt.Errorf("%s payload: %w", t, err)
	}
	return p, nil
}

func decodeAs[T EventPayload](data []byte) (EventPayload, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

func requested(d *EventData) ApprovalRequested {
	return ApprovalRequested{ApprovalID: d.ApprovalID, DecisionID: d.DecisionID, Action: d.Action, Amount: d.Amount,
		Customer: d.Customer, Rule: d.Rule, PolicyVersion: d.Version, Member: d.Member, Team: d.Team,
		ApproverRole: d.ApproverRole, DueAt: d.DueAt}
}

// decodeAudit decodes an entry's data, naming the entry when it cannot.
func decodeAudit(e *AuditEntry, v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("audit entry %d (%s) of org %s: cannot decode its data: %w", e.Seq, e.Action, e.OrgID, err)
	}
	return nil
}

// WebhookBody is the body of a webhook delivery of one event (Standard
// Webhooks): the type, the entry's time, and the payload's fields with the
// entry's seq, actor and subject:
//
//	{"type":"approval.decided","timestamp":"2026-11-25T09:30:15.123456Z",
//	 "data":{"actor":"mem_…","approval_id":"apr_…",…,"seq":42,"subject":"apr_…",…}}
func WebhookBody(e *AuditEntry, p EventPayload) (json.RawMessage, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	data := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, err
	}
	for k, v := range map[string]any{"seq": e.Seq, "actor": e.Actor, "subject": e.Subject} {
		if data[k], err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	return json.Marshal(struct {
		Type      EventType                  `json:"type"`
		Timestamp string                     `json:"timestamp"`
		Data      map[string]json.RawMessage `json:"data"`
	}{p.EventType(), e.At.UTC().Format(time.RFC3339Nano), data})
}
