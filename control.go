package margen

import (
	"context"
	"encoding/json"
	"time"
)

// ApprovalStore is the part of the store contract behind the fast path to a
// yes: approval requests, their resolution and escalation. Both engines
// implement it; the conformance suite checks it.
type ApprovalStore interface {
	// ListApprovals lists an organisation's requests, newest first.
	ListApprovals(ctx context.Context, orgID string, f ApprovalFilter) ([]Approval, error)
	// GetApprovalWithHistory is GetApproval with its History filled in.
	GetApprovalWithHistory(ctx context.Context, orgID, id string) (*Approval, error)

	// RequestException records a request no grant covers. With the
	// organisation locked it reads the requester's team (ENOTFOUND for an
	// unknown member), calls plan (the pure rule, approval.Exception) and
	// writes what it returns: the decision (outcome needs_approval, no
	// budget held), its approval request of kind "exception", the
	// "requested" history event, a new customer (created if it is new), the
	// audit entry and the idempotency record, in one transaction. A
	// customer the decision names must exist unless the write brings it.
	// An error from plan rolls everything back and is returned unchanged.
	RequestException(ctx context.Context, orgID, memberID string,
		plan func(*ExceptionState) (*ExceptionWrite, error)) error

	// ResolveApproval moves a pending request on, atomically and only if it
	// is still pending at the level the caller saw (level); otherwise it
	// changes nothing and returns ECONFLICT "error.approval_already_decided".
	// With the request's row locked it reads the ResolutionState, calls
	// resolve (the pure rule, approval.Resolve) and applies the
	// ResolutionWrite it returns: the request's new state (guarded by the
	// level read), the ledger entries and balance moves, the act, the
	// history event, the audit entry and the idempotency record, in one
	// transaction. An error from resolve rolls everything back and is
	// returned unchanged. It returns the request as written, with its
	// history.
	ResolveApproval(ctx context.Context, orgID, approvalID string, level int,
		resolve func(*ResolutionState) (*ResolutionWrite, error)) (*Approval, error)

	// DueApprovals lists pending requests of every organisation whose due
	// time is at or before now, oldest first, then by id (the SLA worker's
	// scan), resuming after the request after names (zero: from the first).
	DueApprovals(ctx context.Context, now time.Time, after DueAfter, limit int) ([]Approval, error)
}

// DueAfter is where a scan of due requests resumes: after the request due
// at DueAt with id ID, in (due time, id) order. The zero value starts at
// the first.
type DueAfter struct {
	DueAt time.Time
	ID    string
}

// ApprovalFilter narrows ListApprovals. Empty fields match everything.
type ApprovalFilter struct {
	Page
	Status        string
	ApproverRoles []string // requests currently routed to any of these roles
	MemberID      string   // requests made by this member
}

// Resolution is an answer to an approval request (by a person or by the
// SLA worker): the input of the pure resolution (approval.Resolve).
//
//	approved: voids the held amount and posts it on the same accounts,
//	          creates the act (ActID) and links it to the decision;
//	rejected, expired: voids the held amount;
//	escalated: moves the request to Approver with DueAt, OnTimeout and
//	          EscalateTo, Level+1; the hold stays.
//
// Every resolution appends a history event and an audit entry (action
// "approval.approved", "approval.rejected", "approval.expired" or
// "approval.escalated", data with approval id, decision id, requester,
// approver role(s), amount and the time to answer in milliseconds).
type Resolution struct {
	ApprovalID string
	Level      int    // the level the resolver saw; guards against races
	Status     string // ApprovalApproved, ApprovalRejected, ApprovalExpired, or "escalated"
	Actor      string // member id, or "system"
	Comment    string
	At         time.Time
	ActID      string // new act id, for approved

	// For escalations:
	Approver   string
	DueAt      time.Time
	OnTimeout  string
	EscalateTo string
}

// Escalated is the Resolution status that moves a request up instead of
// ending it.
const Escalated = "escalated"

// ExceptionState is what RequestException read with the organisation
// locked.
type ExceptionState struct {
	Team string // the requester's team ("" when none)
}

// ExceptionWrite is everything an exception request writes, committed
// together or not at all.
type ExceptionWrite struct {
	Decision Decision
	Approval Approval // with its History: the one requested event
	Event    ApprovalEvent
	Customer *Customer  // created with the request if it is new
	Audit    AuditEntry // Seq, PrevHash, Hash and Rows are filled by the store
	Idem     *Idempotency
}

// ResolutionState is what ResolveApproval read with the request's row
// locked: the resolution is computed from it.
type ResolutionState struct {
	Approval Approval // as stored, without history
	Team     string   // the requester's team ("" when none)
	// What the act of an approval copies from the request's decision.
	Currency string
	Reason   string
	Flagged  bool
	// Holds is what the request's decision still holds, per account: the
	// non-zero sums of its pending ledger entries, in key order.
	Holds []Hold
}

// Hold is an amount a decision holds (pending) on one budget account.
type Hold struct {
	Key    BudgetKey
	Amount int64
}

// ResolutionWrite is everything one resolution writes, committed together
// or not at all.
type ResolutionWrite struct {
	// Approval is the request as it is after the resolution: the store
	// writes its status, answer (decided_by, decided_at, comment, act_id)
	// and routing (approver_role, due_at, sla, on_timeout, escalate_to,
	// level) columns, only while the row is still pending at the level it
	// read.
	Approval Approval
	// Act, when set, is inserted and linked to its decision.
	Act *Act
	// Ledger entries are inserted (empty ids are filled in); Accounts move
	// the balances of existing budget accounts (posted and pending only).
	Ledger   []LedgerEntry
	Accounts []AccountDelta
	Event    ApprovalEvent
	Audit    AuditEntry // Seq, PrevHash, Hash and Rows are filled by the store
	Idem     *Idempotency
}

// WebhookStore keeps webhook endpoints and their deliveries. Deliveries are
// created from the audit trail (so only committed changes are ever sent) by
// DispatchWebhooks, and sent by jobs of the durable queue (JobStore).
type WebhookStore interface {
	CreateWebhook(ctx context.Context, w *Webhook, actor string, idem *Idempotency) error
	ListWebhooks(ctx context.Context, orgID string) ([]Webhook, error)
	GetWebhook(ctx context.Context, orgID, id string) (*Webhook, error)
	// DeleteWebhook deactivates an endpoint; its deliveries stay visible.
	DeleteWebhook(ctx context.Context, orgID, id, actor string) error

	// DispatchWebhooks (now: the caller's clock, the deliveries' first
	// attempt time) reads the organisation's audit entries after its
	// webhook cursor, creates one pending delivery per matching active
	// endpoint (event type = the audit action) with its job in the queue
	// (JobWebhookDelivery) and advances the cursor, in one transaction (the
	// cursor row locked, so two processes never create the same delivery).
	// It returns how many deliveries it created.
	DispatchWebhooks(ctx context.Context, orgID string, now time.Time, limit int) (int, error)
	// OrgsWithWebhooks lists organisations having an active endpoint.
	OrgsWithWebhooks(ctx context.Context) ([]string, error)

	// DeliveryForAttempt returns a delivery with its endpoint's URL and
	// secret, for the worker about to send it (Status says whether there is
	// still anything to send; an inactive endpoint leaves URL empty).
	DeliveryForAttempt(ctx context.Context, orgID, id string) (*Delivery, error)
	// FinishDelivery records an attempt, and with it, in one transaction,
	// the result of the job that made it (JobStore.FinishJob): a 2xx answer
	// delivers; otherwise the delivery waits for the job's retry, or fails
	// when the job is dead-lettered. When the job's claim no longer holds
	// (its lease ran out), the attempt is recorded but changes neither the
	// delivery's status nor the job.
	FinishDelivery(ctx context.Context, d *Delivery, a DeliveryAttempt, j *Job, r JobResult) error
	ListDeliveries(ctx context.Context, orgID string, f DeliveryFilter) ([]Delivery, error)
	GetDelivery(ctx context.Context, orgID, id string) (*Delivery, error)
	// ReplayDelivery queues a delivery again (its job re-armed), for an
	// attempt at now.
	ReplayDelivery(ctx context.Context, orgID, id, actor string, now time.Time) (*Delivery, error)
	// PendingDeliveries counts deliveries not yet delivered nor failed.
	PendingDeliveries(ctx context.Context) (int, error)
	// PendingApprovals counts open approval requests of every organisation.
	PendingApprovals(ctx context.Context) (int, error)
}

// Webhook is an endpoint an organisation registered, with the events it
// wants ("*" for all) and the secret its deliveries are signed with
// (Standard Webhooks: "whsec_" + base64 of the key).
type Webhook struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"-"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"` // shown when created only
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event to send to one endpoint, with its attempts.
type Delivery struct {
	ID         string            `json:"id"` // also the webhook-id header
	OrgID      string            `json:"-"`
	WebhookID  string            `json:"webhook_id"`
	URL        string            `json:"url"`
	Secret     string            `json:"-"`
	EventType  EventType         `json:"event_type"`
	AuditSeq   int64             `json:"audit_seq"`
	Payload    json.RawMessage   `json:"payload"`
	Status     string            `json:"status"`
	Attempts   int               `json:"attempts"`
	NextAt     time.Time         `json:"next_at"`
	CreatedAt  time.Time         `json:"created_at"`
	LastStatus int               `json:"last_status,omitempty"`
	History    []DeliveryAttempt `json:"history,omitempty"`
}

// DeliveryAttempt is one try to deliver, with the receiver's answer.
type DeliveryAttempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`        // 0: no HTTP answer
	Error      string    `json:"error,omitempty"`    // transport error
	Response   string    `json:"response,omitempty"` // first 1 KiB of the body
	DurationMS int64     `json:"duration_ms"`
}

// DeliveryFilter narrows ListDeliveries.
type DeliveryFilter struct {
	Page
	WebhookID string
	Status    string
}
