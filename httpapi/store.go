package httpapi

import (
	"context"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/importer"
)

// Store is what the API asks of the database (margen.Store has it all):
// what imports and exports need, and the reads and writes its routes make.
// The decision engine and the approval service bring their own.
type Store interface {
	importer.Store
	margen.ExportStore

	// Health and authentication.
	Ping(ctx context.Context) error
	TokenByHash(ctx context.Context, hash []byte) (*margen.Token, error)
	RevokeToken(ctx context.Context, orgID, id, actor string) error
	OrgByID(ctx context.Context, id string) (*margen.Org, error)
	MemberByID(ctx context.Context, orgID, id string) (*margen.Member, error)
	ListMembers(ctx context.Context, orgID string) ([]margen.Member, error)

	// Policies.
	PolicyByVersion(ctx context.Context, orgID string, version int) (*margen.PolicyVersion, error)
	ListPolicies(ctx context.Context, orgID string) ([]margen.PolicyVersion, error)
	PublishPolicy(ctx context.Context, pv *margen.PolicyVersion, idem *margen.IdemWrite[*margen.PolicyVersion]) error

	// Records.
	GetDecision(ctx context.Context, orgID, id string) (*margen.Decision, error)
	ListDecisions(ctx context.Context, orgID string, f margen.DecisionFilter) ([]margen.Decision, error)
	GetAct(ctx context.Context, orgID, id string) (*margen.Act, error)
	ListActs(ctx context.Context, orgID string, f margen.ActFilter) ([]margen.Act, error)
	GetRefusal(ctx context.Context, orgID, id string) (*margen.Refusal, error)
	ListRefusals(ctx context.Context, orgID string, f margen.RefusalFilter) ([]margen.Refusal, error)
	RecordReaction(ctx context.Context, r *margen.Reaction, idem *margen.Idempotency) error
	RecordRefusal(ctx context.Context, r *margen.Refusal, c *margen.Customer, idem *margen.Idempotency) error
	CustomerByID(ctx context.Context, orgID, id string) (*margen.Customer, error)

	// Survey links and answers.
	CreateSurveyLink(ctx context.Context, l *margen.SurveyLink, actor string, idem *margen.Idempotency) error
	CreateSurveyLinkEmail(ctx context.Context, l *margen.SurveyLink, e *margen.SurveyEmail, actor string, idem *margen.Idempotency) error
	ListSurveyAnswers(ctx context.Context, orgID string, f margen.SurveyAnswerFilter) ([]margen.SurveyAnswer, error)

	// An organisation's follow-up rule.
	CaseSettings(ctx context.Context, orgID string) (margen.CaseSettings, error)
	SetCaseSettings(ctx context.Context, orgID string, x margen.CaseSettings, actor string) error
	EraseCustomer(ctx context.Context, orgID, customerID, actor string, at time.Time, idem *margen.IdemWrite[*margen.Erasure]) (*margen.Erasure, error)
	ExportCustomer(ctx context.Context, orgID, customerID string, fn func(section string, v any) error) error
	ListBudgets(ctx context.Context, orgID string, f margen.BudgetFilter) ([]margen.BudgetAccount, error)

	// Approvals (the service answers them).
	ListApprovals(ctx context.Context, orgID string, f margen.ApprovalFilter) ([]margen.Approval, error)
	GetApprovalWithHistory(ctx context.Context, orgID, id string) (*margen.Approval, error)

	// Webhooks.
	CreateWebhook(ctx context.Context, w *margen.Webhook, actor string, idem *margen.Idempotency) error
	ListWebhooks(ctx context.Context, orgID string) ([]margen.Webhook, error)
	GetWebhook(ctx context.Context, orgID, id string) (*margen.Webhook, error)
	DeleteWebhook(ctx context.Context, orgID, id, actor string) error
	ListDeliveries(ctx context.Context, orgID string, f margen.DeliveryFilter) ([]margen.Delivery, error)
	GetDelivery(ctx context.Context, orgID, id string) (*margen.Delivery, error)
	ReplayDelivery(ctx context.Context, orgID, id, actor string, now time.Time) (*margen.Delivery, error)

	// Idempotency and control.
	Idempotency(ctx context.Context, orgID, memberID, key string) (*margen.Idempotency, error)
	ListAudit(ctx context.Context, orgID string, afterSeq int64, limit int) ([]margen.AuditEntry, error)
	CheckAudit(ctx context.Context, orgID string) (margen.AuditReport, error)
	CheckLedger(ctx context.Context, orgID string) (margen.LedgerReport, error)

	// The ledger check runs as a job; the API serves its latest report.
	LatestLedgerCheck(ctx context.Context, orgID string, ok bool) (*margen.LedgerCheck, error)
	LedgerCheckQueued(ctx context.Context, orgID string) (bool, error)
	EnqueueJob(ctx context.Context, j *margen.Job) (bool, error)
}
