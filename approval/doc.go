// Package approval is the fast path to a yes: it routes approval requests to
// whoever can decide them, answers them (approve or reject) under the
// guards of issue 3, takes exception requests that no grant covers, and runs
// the SLA worker that escalates, approves or expires requests nobody
// answered in time.
//
// # Routing
//
// A request is routed to a role (Approval.ApproverRole). A member can decide
// it when their policy role reaches that role (policy.RolesReaching: the
// role itself or one that inherits it), or when they have access "owner":
// owners see and may decide everything. The pseudo-role "owner" means the
// members with access owner (and any member whose policy role reaches a
// role a policy may itself call "owner").
//
// Requests go to the requester's team first, then the organisation: an
// approver of another team sees a request only when the requester has no
// team, the approver has none (organisation-level staff), or no active
// member of the requester's team can decide it (so a request never waits
// on a team that cannot serve it).
//
// Who may see and who may answer is one pure rule, RightsOn: the inbox
// (Pending), GET /approvals/{id}, approve and reject (Answer) and the live
// stream (Visible) all ask it. Whoever may answer a request may see it; a
// request a member may not see answers like a missing one (ENOTFOUND), also
// to approve and reject. Those who see without answering are the
// requester, members who acted on it before, members it was routed to
// before an escalation, and supervisors and above (oversight).
//
// # Guards
//
// Nobody answers their own request; the approver must be able to approve;
// an approver other than an owner may approve an amount only within their
// own latitude (the active policy evaluated for them, with the request's
// action, amount, customer and context): when their own verdict is over_max
// (or no_grant for a monetary action) the approval is refused and the
// request escalates at once to the next role: the approver's own approval
// route, else the request's escalate_to, else owner, skipping any role the
// approver already reaches. Exceptions are non-monetary: being able to
// decide their role is enough. Rejecting is always allowed to a valid
// approver. Every resolution goes through
// margen.ApprovalStore.ResolveApproval with the level the caller saw, so
// concurrent answers and the SLA worker resolve a request exactly once (a
// retried approval that escalated finds the request out of the approver's
// reach: "error.not_approver", never a second escalation).
//
// # Escalation rule
//
// When a request moves to role R (by the SLA worker or because an approver
// lacked the latitude), it keeps its SLA (1h when it had none) and takes
// the on_timeout and escalate_to of the policy's route for R: the default
// approval route if its approver is R, else the first grant (in file order)
// whose `above` route names R. Without such a route, or when that route
// would escalate to R itself, or after 8 escalations, the next timeout
// denies (the request expires). When no active member other than the
// requester can decide R, the request goes to "owner" instead, so every
// request has someone who can answer it.
//
// # Resolution
//
// What an answer, an escalation or a timeout writes is computed by one pure
// function, Resolve, from the state the store read with the request locked
// (margen.ResolutionState): the request's new state, the ledger moves that
// end its hold (void, and post for a yes), the act, the history event, the
// audit entry and the idempotency record (margen.ResolutionWrite). The
// store applies it in the same transaction (ResolveApproval), so the rule
// is table-tested here and the store keeps none. An exception request is
// computed the same way (Exception, applied by RequestException).
//
// The package reads the time only through the injected margen.Clock. It
// must never write SQL or speak HTTP: it works through the Store contract.
package approval
