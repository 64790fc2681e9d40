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

	// RequestException records a request no grant covers: the decision
	// (outcome needs_approval, no budget held), its approval request of kind
	// "exception", the "requested" history event and the audit entry, in one
	// transaction.
	// A non-nil customer is created in the same transaction if it is new.
	RequestException(ctx context.Context, d *Decision, a *Approval, c *Customer, idem *Idempotency) error

	// ResolveApproval moves a pending request on, atomically and only if it
	// is still pending at the level the caller saw (r.Level); otherwise it
	// changes nothing and returns ECONFLICT "error.approval_already_decided".
	//   approved: voids the held amount and posts it on the same accounts,
	//             creates the act (r.ActID) and links it to the decision;
	//   rejected, expired: voids the held amount;
	//   escalated: moves the request to r.Approver with r.DueAt, r.OnTimeout
	//             and r.EscalateTo, Level+1; the hold stays.
	// Every resolution appends a history event and an audit entry (action
	// "approval.approved", "approval.rejected", "approval.expired" or
	// "approval.escalated", data with approval id, decision id, requester,
	// approver role(s), amount and the time to answer in milliseconds).
	ResolveApproval(ctx context.Context, orgID string, r Resolution, idem *Idempotency) (*Approval, error)

	// DueApprovals lists pending requests of every organisation whose due
	// time is at or before now, oldest first (the SLA worker's scan).
	DueApprovals(ctx context.Context, now time.Time, limit int) ([]Approval, error)
}

// ApprovalFilter narrows ListApprovals. Empty fields match everything.
type ApprovalFilter struct {
	Page
	Status        string
	ApproverRoles []string // requests currently routed to any of these roles
	MemberID      string   // requests made by this member
}

// Resolution is an answer to an approval request (by a person or by the
// SLA worker).
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
