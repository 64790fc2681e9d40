package margen

// AuditAction names what an audit entry records. Every action margen writes
// is one of the constants below and is listed in AuditActions, with the
// subject its entries name; the store refuses to append an entry whose
// action is not registered, and a test fails on a literal or converted
// action anywhere else in the code. Actions are part of the public
// contract: GET /api/v1/audit shows them, and the events of the live
// stream and of webhooks are derived from them (EventsOf).
type AuditAction string

// Audit actions.
const (
	ActionOrgCreate             AuditAction = "org.create"
	ActionTeamCreate            AuditAction = "team.create"
	ActionTeamUpdate            AuditAction = "team.update"
	ActionMemberCreate          AuditAction = "member.create"
	ActionMemberUpdate          AuditAction = "member.update"
	ActionMemberActivate        AuditAction = "member.activate"
	ActionMemberDeactivate      AuditAction = "member.deactivate"
	ActionMemberPassword        AuditAction = "member.password"
	ActionMemberLanguage        AuditAction = "member.language"
	ActionTokenCreate           AuditAction = "token.create"
	ActionTokenRevoke           AuditAction = "token.revoke"
	ActionInvitationCreate      AuditAction = "invitation.create"
	ActionInvitationAccept      AuditAction = "invitation.accept"
	ActionCustomerUpsert        AuditAction = "customer.upsert"
	ActionCustomerImport        AuditAction = "customer.import"
	ActionCustomerErase         AuditAction = "customer.erase"
	ActionImportCustomers       AuditAction = "import.customers"
	ActionImportMembers         AuditAction = "import.members"
	ActionImportTeams           AuditAction = "import.teams"
	ActionPolicyPublish         AuditAction = "policy.publish"
	ActionDecisionCreate        AuditAction = "decision.create"
	ActionExceptionRequest      AuditAction = "exception.request"
	ActionApprovalApproved      AuditAction = "approval.approved"
	ActionApprovalRejected      AuditAction = "approval.rejected"
	ActionApprovalExpired       AuditAction = "approval.expired"
	ActionApprovalEscalated     AuditAction = "approval.escalated"
	ActionRefusalRecord         AuditAction = "refusal.record"
	ActionReactionRecord        AuditAction = "reaction.record"
	ActionWebhookCreate         AuditAction = "webhook.create"
	ActionWebhookDelete         AuditAction = "webhook.delete"
	ActionWebhookReplay         AuditAction = "webhook.replay"
	ActionSurveySettings        AuditAction = "survey.settings"
	ActionSurveyLink            AuditAction = "survey.link"
	ActionSurveyPoint           AuditAction = "survey.point"
	ActionSurveyAnswer          AuditAction = "survey.answer"
	ActionSurveyPointDeactivate AuditAction = "survey.point_deactivate"
	ActionCaseOpen              AuditAction = "case.open"
	ActionCaseEscalate          AuditAction = "case.escalate"
	ActionCaseClose             AuditAction = "case.close"
	ActionCaseSettings          AuditAction = "case.settings"
	ActionAuditSeal             AuditAction = "audit.seal"
)

// AuditActionDoc describes one registered action: what its entries record
// and what their subject is.
type AuditActionDoc struct {
	Action  AuditAction
	Subject string // what the entry's subject names
	Doc     string // when it is written
}

// AuditActions is the registry of every action margen writes, in the order
// docs/api.md lists them.
var AuditActions = []AuditActionDoc{
	{ActionOrgCreate, "organisation id", "an organisation is created (`margen org create`, the setup page)"},
	{ActionTeamCreate, "team id", "a team is created (by hand or by an import)"},
	{ActionTeamUpdate, "team id", "a team is renamed by an import"},
	{ActionMemberCreate, "member id", "a member is created (by hand, by an import or by an accepted invitation)"},
	{ActionMemberUpdate, "member id", "a member's role, team or access changes on the desk (data: the new values and `was`), or an import changes a member"},
	{ActionMemberActivate, "member id", "a member is reactivated"},
	{ActionMemberDeactivate, "member id", "a member is deactivated (their tokens and streams stop working)"},
	{ActionMemberPassword, "member id", "a member's password is set or changed (the hash is never recorded)"},
	{ActionMemberLanguage, "member id", "a member changes their language"},
	{ActionTokenCreate, "token id", "an API token is created (the token itself is never recorded)"},
	{ActionTokenRevoke, "token id", "an API token is revoked"},
	{ActionInvitationCreate, "invitation id", "an invitation to join is created"},
	{ActionInvitationAccept, "invitation id", "an invitation is accepted (right after the new member's `member.create`)"},
	{ActionCustomerUpsert, "customer id", "a customer is created or changed by hand"},
	{ActionCustomerImport, "customer id", "a customer is created or changed by an import (the trail names it, not its contact details)"},
	{ActionCustomerErase, "customer id", "a customer's personal data is erased (data: how many rows of each table changed, never the erased data); the entry commits to every row it changed"},
	{ActionImportCustomers, "\"customers\"", "an import of customers is applied (counts of new, updated, unchanged and skipped lines)"},
	{ActionImportMembers, "\"members\"", "an import of members is applied"},
	{ActionImportTeams, "\"teams\"", "an import of teams is applied"},
	{ActionPolicyPublish, "\"policy\"", "a policy version is published"},
	{ActionDecisionCreate, "decision id", "a decision is recorded (any outcome)"},
	{ActionExceptionRequest, "approval id", "an exception is requested (something no grant covers)"},
	{ActionApprovalApproved, "approval id", "an approver approves a request"},
	{ActionApprovalRejected, "approval id", "an approver rejects a request"},
	{ActionApprovalExpired, "approval id", "a request's SLA passes and its policy says deny"},
	{ActionApprovalEscalated, "approval id", "a request's SLA passes and it moves to another role"},
	{ActionRefusalRecord, "refusal id", "a refusal given outside the decision flow is recorded"},
	{ActionReactionRecord, "reaction id", "a reaction to an act is recorded"},
	{ActionWebhookCreate, "webhook id", "a webhook endpoint is registered (its secret is never recorded)"},
	{ActionWebhookDelete, "webhook id", "a webhook endpoint is deleted"},
	{ActionWebhookReplay, "delivery id", "a webhook delivery is queued again"},
	{ActionSurveySettings, "organisation id", "the organisation's survey scale is set"},
	{ActionSurveyLink, "survey link id", "a survey link is created for an act"},
	{ActionSurveyPoint, "survey point id", "a standing survey point (QR code) is created"},
	{ActionSurveyAnswer, "survey answer id", "a customer answers a survey (the comment stays in its row, not in the trail)"},
	{ActionSurveyPointDeactivate, "survey point id", "a standing survey point (QR code) is deactivated: its printed code opens nothing, its answers stay"},
	{ActionCaseOpen, "case id", "a low survey answer opens a follow-up case (written by the answer's transaction)"},
	{ActionCaseEscalate, "case id", "an open case's SLA passes and it escalates one step along the approval chain (the route's escalate_to, up to the owners)"},
	{ActionCaseClose, "case id", "a case is closed with what was done, its outcome and the customer's reaction"},
	{ActionCaseSettings, "organisation id", "the organisation's case thresholds (CSAT, NPS) and SLA are set"},
	{ActionAuditSeal, "organisation id", "the trail is sealed with the audit key (commits to every row already stored)"},
}

var auditActionSet = func() map[AuditAction]bool {
	m := make(map[AuditAction]bool, len(AuditActions))
	for _, a := range AuditActions {
		m[a.Action] = true
	}
	return m
}()

// Known reports whether a is a registered action.
func (a AuditAction) Known() bool { return auditActionSet[a] }

// ResolutionAction is the action of the audit entry of an approval
// resolution with the given status (ApprovalApproved, ApprovalRejected,
// ApprovalExpired or Escalated); "" for any other status, which the store
// refuses to write.
func ResolutionAction(status string) AuditAction {
	switch status {
	case ApprovalApproved:
		return ActionApprovalApproved
	case ApprovalRejected:
		return ActionApprovalRejected
	case ApprovalExpired:
		return ActionApprovalExpired
	case Escalated:
		return ActionApprovalEscalated
	}
	return ""
}

// ImportAction is the action of the summary entry of an applied import of
// the given kind (ImportCustomers, ImportMembers or ImportTeams); "" for
// any other kind, which the store refuses to write.
func ImportAction(kind string) AuditAction {
	switch kind {
	case ImportCustomers:
		return ActionImportCustomers
	case ImportMembers:
		return ActionImportMembers
	case ImportTeams:
		return ActionImportTeams
	}
	return ""
}
