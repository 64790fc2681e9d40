package approval

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/policy"
)

// Store is what the service asks of the database: the approval part of
// the contract and four reads (margen.Store has them all).
type Store interface {
	margen.ApprovalStore
	GetApproval(ctx context.Context, orgID, id string) (*margen.Approval, error)
	GetDecision(ctx context.Context, orgID, id string) (*margen.Decision, error)
	CustomerByID(ctx context.Context, orgID, id string) (*margen.Customer, error)
	ListMembers(ctx context.Context, orgID string) ([]margen.Member, error)
}

// Options tune a Service. Zero values take the defaults.
type Options struct {
	Clock  margen.Clock
	Logger *slog.Logger
	// Notify is called after every committed change (a new request, an
	// answer, an escalation), e.g. to wake the live stream's broker.
	Notify func(orgID string)
	// Observe records each resolution: kind is "approved", "rejected",
	// "expired" or "escalated"; seconds is the time from the request to
	// this answer (time to yes, for approvals).
	Observe func(org string, kind string, seconds float64)
}

// Names and limits.
const (
	// OwnerRole is the pseudo-role of the members with access owner: where
	// a request goes when nobody else can decide it.
	OwnerRole = policy.OwnerRole
	// SystemActor answers requests on timeout.
	SystemActor = "system"
	// ExceptionAction is the action of an exception request's decision.
	ExceptionAction = margen.ApprovalKindException
	// DefaultSLA applies to exceptions without a default approval route
	// and to escalations of requests that had no SLA.
	DefaultSLA = time.Hour
	// MaxLevel bounds escalations: after it, the next timeout denies.
	MaxLevel = 8

	maxComment     = 1000
	maxDescription = 1000
	maxReason      = 1000
	maxRef         = 200
	maxName        = 200
	maxContext     = 8 << 10
	maxTags        = policy.MaxCustomerTags
	dirTTL         = 5 * time.Second // member directory cache
	scanPage       = 500             // rows per ListApprovals call
	maxScan        = 10000           // pending requests Pending sorts at most
	sweepBatch     = 500
	sweepWorkers   = 4
	sweepPages     = 20 // batches one sweep reads at most (see Sweep)
)

// Service answers, routes and times out approval requests. It is safe for
// concurrent use; several services (processes) may share one database.
type Service struct {
	st      Store
	eng     *decision.Engine
	clock   margen.Clock
	log     *slog.Logger
	notify  func(string)
	observe func(string, string, float64)

	dirMu sync.Mutex
	dirs  map[string]*cachedDir

	// sweepMu serialises this service's sweeps; sweepAt is where the next
	// one resumes (see Sweep).
	sweepMu sync.Mutex
	sweepAt margen.DueAfter
}

// New returns the approval service over a store and the decision engine
// (whose compiled policy cache it shares).
func New(st Store, eng *decision.Engine, opt Options) *Service {
	if opt.Clock == nil {
		opt.Clock = margen.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Notify == nil {
		opt.Notify = func(string) {}
	}
	if opt.Observe == nil {
		opt.Observe = func(string, string, float64) {}
	}
	return &Service{st: st, eng: eng, clock: opt.Clock, log: opt.Logger, notify: opt.Notify,
		observe: opt.Observe, dirs: make(map[string]*cachedDir)}
}

// ExceptionRequest asks for something no grant covers.
type ExceptionRequest struct {
	Description string                 `json:"description"`
	Customer    decision.CustomerInput `json:"customer"` // optional: Ref "" for none
	Reason      string                 `json:"reason,omitempty"`
	Context     json.RawMessage        `json:"context,omitempty"`
}

// ExceptionResult is the answer to an exception request, and the body
// stored with its idempotency record.
type ExceptionResult struct {
	Decision *margen.Decision `json:"decision"`
	Approval *margen.Approval `json:"approval"`
}

func reaches(pol *policy.Policy, role, target string) bool {
	if pol == nil || target == "" {
		return false
	}
	return slices.Contains(pol.RolesReaching(role), target)
}

// Answer approves or rejects a pending request as approver.
//
// Refused with EFORBIDDEN "error.self_approval" for the requester's own
// request, "error.not_approver" when the approver cannot decide the role the
// request is routed to, and "error.approval_beyond_latitude" (args max,
// escalated_to) when approving is beyond the approver's own latitude: the
// request is then escalated at once. ECONFLICT
// "error.approval_already_decided" when the request was answered (or moved)
// meanwhile.
//
// When idem is given, its record, rendered from the approval as answered
// (without history), is stored with the answer.
func (s *Service) Answer(ctx context.Context, org *margen.Org, approver *margen.Member, id string, approve bool, comment string, idem *margen.IdemWrite[*margen.Approval]) (*margen.Approval, error) {
	if org == nil || approver == nil {
		return nil, margen.Errorf(margen.EUNAUTHORIZED, "error.unauthorized")
	}
	if !approver.Active {
		return nil, margen.Errorf(margen.EFORBIDDEN, "error.member_inactive")
	}
	if len(comment) > maxComment {
		return nil, margen.Invalid("comment", "error.too_long", "field", "comment", "max", maxComment)
	}
	// With its history: who acted on it and where it was routed before
	// decide who may see it.
	a, err := s.st.GetApprovalWithHistory(ctx, org.ID, id)
	if err != nil {
		return nil, err
	}
	pol, err := s.policy(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	dir, err := s.directory(ctx, org.ID, a.MemberID)
	if err != nil {
		return nil, err
	}
	// Who may answer is who may see: a request the approver cannot see
	// answers like a missing one.
	rights := RightsOn(pol, dir, approver, TargetOf(a))
	switch {
	case !rights.See:
		return nil, margen.NotFound("approval")
	case a.MemberID == approver.ID:
		return nil, margen.Errorf(margen.EFORBIDDEN, "error.self_approval")
	case !rights.Decide:
		return nil, margen.Errorf(margen.EFORBIDDEN, "error.not_approver", "role", a.ApproverRole)
	}
	if a.Status != margen.ApprovalPending {
		return nil, margen.Errorf(margen.ECONFLICT, "error.approval_already_decided")
	}
	now := s.clock.Now()
	r := margen.Resolution{ApprovalID: a.ID, Level: a.Level, Actor: approver.ID, Comment: comment, At: now}
	if approve {
		lat, err := s.latitude(ctx, org, pol, approver, a, now)
		if err != nil {
			return nil, err
		}
		if lat.beyond {
			to := nextRole(pol, approver, a, lat.route)
			esc, err := s.escalate(ctx, org.ID, pol, a, to, approver.ID, comment, now)
			if err != nil {
				return nil, err
			}
			return nil, margen.Errorf(margen.EFORBIDDEN, "error.approval_beyond_latitude",
				"max", lat.max, "escalated_to", esc.Approver)
		}
		r.Status = margen.ApprovalApproved
		r.ActID = margen.NewID("act")
	} else {
		r.Status = margen.ApprovalRejected
	}
	var rec *margen.Idempotency
	if idem != nil {
		out := *a
		out.Status, out.DecidedBy, out.DecidedAt, out.Comment, out.ActID, out.History = r.Status, r.Actor, &now, comment, r.ActID, nil
		if rec, err = idem.For(&out); err != nil {
			return nil, err
		}
	}
	out, err := s.st.ResolveApproval(ctx, org.ID, r.ApprovalID, r.Level, Resolver(r, rec))
	if err != nil {
		return nil, err
	}
	s.resolved(org.ID, r.Status, a, now)
	return out, nil
}

// latitudeCheck is an approver's own verdict on a request.
type latitudeCheck struct {
	beyond bool
	max    int64  // the approver's max_amount (0 without a grant)
	route  string // the approver's own approval route, if any
}

// latitude evaluates the active policy for the approver as if they were
// asking: same action, amount, customer and context as the request's
// decision, at the time of the answer. Only the grants' max_amount bounds
// an approver (the amount is held on the requester's budgets, not the
// approver's). Owners are not bounded; neither are exceptions, which are
// non-monetary: being able to decide their role is enough.
func (s *Service) latitude(ctx context.Context, org *margen.Org, pol *policy.Policy, m *margen.Member, a *margen.Approval, now time.Time) (latitudeCheck, error) {
	if m.Access == margen.AccessOwner || pol == nil || a.Kind == margen.ApprovalKindException {
		return latitudeCheck{}, nil
	}
	monetary := a.Amount > 0
	d, err := s.st.GetDecision(ctx, org.ID, a.DecisionID)
	if err != nil {
		return latitudeCheck{}, err
	}
	act, ok := pol.Action(d.Action)
	if !ok {
		// The action left the policy since the request was made: nobody
		// but an owner can vouch for an amount under it.
		return latitudeCheck{beyond: monetary}, nil
	}
	req := &policy.Request{
		MemberID:    m.ID,
		MemberLogin: m.Login,
		Role:        m.Role,
		Team:        m.Team,
		CustomerID:  d.CustomerID,
		Action:      d.Action,
		Amount:      d.Amount,
		At:          now,
		Loc:         org.Location(),
	}
	if d.CustomerID != "" {
		c, err := s.st.CustomerByID(ctx, org.ID, d.CustomerID)
		switch {
		case err == nil:
			req.CustomerRef, req.CustomerTags = c.Ref, c.Tags
		case !margen.IsCode(err, margen.ENOTFOUND):
			return latitudeCheck{}, err
		}
	}
	if len(d.Context) > 0 {
		// It was validated when decided: failing now means the stored
		// record is damaged, which must not pass as "no context".
		if err := json.Unmarshal(d.Context, &req.Context); err != nil {
			return latitudeCheck{}, fmt.Errorf("approval %s: read the context of decision %s: %w", a.ID, d.ID, err)
		}
	}
	v, err := pol.Evaluate(req)
	if err != nil {
		// The policy changed under the request (the action became
		// non-monetary, say): nobody but an owner can vouch for it, and
		// the reason is logged, not lost.
		s.log.Warn("approval: cannot evaluate the approver's latitude; the request moves up", "org", org.ID,
			"approval", a.ID, "decision", d.ID, "approver", m.ID, "role", m.Role, "err", err)
		return latitudeCheck{beyond: monetary}, nil
	}
	lc := latitudeCheck{max: v.Max}
	if v.Route != nil {
		lc.route = v.Route.Approver
	}
	switch {
	case v.Code == policy.CodeOverMax:
		lc.beyond = true
	case v.Code == policy.CodeNoGrant && act.Monetary:
		lc.beyond = true
	}
	return lc, nil
}

// nextRole is where a request goes when its approver lacks the latitude:
// the approver's own route, else the request's escalate_to, else owner;
// never a role the approver already reaches (that would bring it back to
// them or to peers with the same latitude).
func nextRole(pol *policy.Policy, m *margen.Member, a *margen.Approval, own string) string {
	reach := pol.RolesReaching(m.Role)
	for _, r := range []string{own, a.EscalateTo} {
		if r != "" && r != a.ApproverRole && !slices.Contains(reach, r) {
			return r
		}
	}
	return OwnerRole
}

// escalate moves a request to role to, under the package's escalation rule.
func (s *Service) escalate(ctx context.Context, orgID string, pol *policy.Policy, a *margen.Approval, to, actor, comment string, now time.Time) (margen.Resolution, error) {
	to = s.servable(ctx, orgID, pol, to, a.MemberID)
	sla := a.SLA
	if sla <= 0 {
		sla = DefaultSLA
	}
	onTimeout, escTo := routeAfter(pol, a.Level+1, to)
	r := margen.Resolution{ApprovalID: a.ID, Level: a.Level, Status: margen.Escalated, Actor: actor,
		Comment: comment, At: now, Approver: to, DueAt: now.Add(sla), OnTimeout: onTimeout, EscalateTo: escTo}
	if _, err := s.st.ResolveApproval(ctx, orgID, r.ApprovalID, r.Level, Resolver(r, nil)); err != nil {
		return r, err
	}
	s.resolved(orgID, margen.Escalated, a, now)
	return r, nil
}

// routeAfter is what a request routed to role at level does on its next
// timeout: what the policy's route for that role says, else deny.
func routeAfter(pol *policy.Policy, level int, role string) (onTimeout, escalateTo string) {
	if rt, ok := routeFor(pol, role); ok {
		switch rt.OnTimeout {
		case policy.OnTimeoutApprove:
			return policy.OnTimeoutApprove, ""
		case policy.OnTimeoutEscalate:
			if rt.EscalateTo != "" && rt.EscalateTo != role && level < MaxLevel {
				return policy.OnTimeoutEscalate, rt.EscalateTo
			}
		}
	}
	return policy.OnTimeoutDeny, ""
}

// routeFor finds the policy's approval route for a role: the default route
// if it names the role, else the first grant's `above` route that does.
func routeFor(pol *policy.Policy, role string) (policy.Route, bool) {
	if pol == nil {
		return policy.Route{}, false
	}
	if rt, ok := pol.DefaultApproval(); ok && rt.Approver == role {
		return rt, true
	}
	for _, g := range pol.Grants() {
		if g.Above != nil && g.Above.Approver == role {
			return *g.Above, true
		}
	}
	return policy.Route{}, false
}

// servable returns role, or OwnerRole when no active member other than the
// requester (and other than the owners, who can decide everything anyway)
// can decide it: nobody may be left waiting on a role nobody holds.
func (s *Service) servable(ctx context.Context, orgID string, pol *policy.Policy, role, requester string) string {
	if role == OwnerRole {
		return role
	}
	dir, err := s.directory(ctx, orgID, "")
	if err != nil {
		s.log.Warn("approval: cannot list members", "org", orgID, "err", err)
		return role
	}
	for _, m := range dir.Members {
		if m.Active && m.ID != requester && m.Access != margen.AccessOwner && reaches(pol, m.Role, role) {
			return role
		}
	}
	return OwnerRole
}

func (s *Service) resolved(orgID, kind string, a *margen.Approval, now time.Time) {
	s.notify(orgID)
	s.observe(orgID, kind, max(now.Sub(a.CreatedAt).Seconds(), 0))
}

// policy returns the organisation's active policy, or nil when it has none
// (owners may still decide what is pending).
func (s *Service) policy(ctx context.Context, orgID string) (*policy.Policy, error) {
	pol, _, err := s.eng.Policy(ctx, orgID)
	if margen.IsCode(err, margen.ECONFLICT) {
		return nil, nil
	}
	return pol, err
}

// PendingMax is the most requests one page of Pending holds.
const PendingMax = scanPage

// Pending lists the pending requests m can decide now, oldest due first.
// The cursor (page.After) is the id of the last request of the previous
// page.
func (s *Service) Pending(ctx context.Context, org *margen.Org, m *margen.Member, page margen.Page) ([]margen.Approval, error) {
	pol, err := s.policy(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	f := margen.ApprovalFilter{Status: margen.ApprovalPending}
	if m.Access != margen.AccessOwner {
		if pol == nil {
			return []margen.Approval{}, nil
		}
		f.ApproverRoles = pol.RolesReaching(m.Role)
		if len(f.ApproverRoles) == 0 {
			return []margen.Approval{}, nil
		}
	}
	var all []margen.Approval
	for len(all) < maxScan {
		f.Page = margen.Page{Limit: scanPage}
		if len(all) > 0 {
			f.Page.After = all[len(all)-1].ID
		}
		got, err := s.st.ListApprovals(ctx, org.ID, f)
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
		if len(got) < scanPage {
			break
		}
	}
	dir, err := s.directory(ctx, org.ID, "")
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for i := range all {
		if RightsOn(pol, dir, m, TargetOf(&all[i])).Decide {
			out = append(out, all[i])
		}
	}
	byDue := func(a, b margen.Approval) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(out, byDue)
	if page.After != "" {
		c, err := s.st.GetApproval(ctx, org.ID, page.After)
		if margen.IsCode(err, margen.ENOTFOUND) {
			return nil, margen.Invalid("after", "error.invalid_cursor")
		}
		if err != nil {
			return nil, err
		}
		i, _ := slices.BinarySearchFunc(out, *c, byDue)
		for i < len(out) && byDue(out[i], *c) <= 0 {
			i++
		}
		out = out[i:]
	}
	limit := page.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, scanPage)
	if len(out) > limit {
		out = out[:limit]
	}
	return slices.Clip(out), nil
}

// Mine lists the requests m made, newest first.
func (s *Service) Mine(ctx context.Context, org *margen.Org, m *margen.Member, page margen.Page) ([]margen.Approval, error) {
	return s.st.ListApprovals(ctx, org.ID, margen.ApprovalFilter{Page: page, MemberID: m.ID})
}

// Rights is what m may do with request a (read with its history when the
// caller has it): RightsOn over the active policy and the members.
func (s *Service) Rights(ctx context.Context, org *margen.Org, m *margen.Member, a *margen.Approval) (Rights, error) {
	if org == nil || m == nil || a == nil {
		return Rights{}, nil
	}
	pol, err := s.policy(ctx, org.ID)
	if err != nil {
		return Rights{}, err
	}
	dir, err := s.directory(ctx, org.ID, a.MemberID)
	if err != nil {
		return Rights{}, err
	}
	return RightsOn(pol, dir, m, TargetOf(a)), nil
}

// Visible reports whether an event of the live stream is for m:
//   - owners see everything; policy publications go to everyone;
//   - approval events go to whoever may see the request (RightsOn): the
//     requester, the members whose inbox it is (or was, for escalations
//     and answers) in, and supervisors and above;
//   - other events (decisions, refusals, reactions) go to the member they
//     are about and to supervisors and above, as the API's lists do.
//
// It fails closed: when the policy or the members cannot be read it
// answers false.
func (s *Service) Visible(ctx context.Context, org *margen.Org, m *margen.Member, ev events.Event) bool {
	if m == nil || org == nil {
		return false
	}
	if m.Access == margen.AccessOwner || ev.Type == margen.EventPolicyPublished {
		return true
	}
	var d margen.EventRoute
	if ev.Data != nil {
		d = ev.Data.Route()
	}
	if (d.Member != "" && d.Member == m.ID) || ev.Actor == m.ID {
		return true
	}
	switch ev.Type {
	case margen.EventApprovalRequested, margen.EventApprovalEscalated, margen.EventApprovalDecided:
		pol, err := s.policy(ctx, org.ID)
		if err != nil {
			s.log.Warn("approval: cannot load the policy to route an event", "org", org.ID, "seq", ev.Seq, "err", err)
			return false
		}
		dir, err := s.directory(ctx, org.ID, d.Member)
		if err != nil {
			s.log.Warn("approval: cannot list members", "org", org.ID, "err", err)
			return false
		}
		t := Target{Requester: d.Member, Role: d.ApproverRole}
		if d.FromRole != "" {
			t.Earlier = []string{d.FromRole}
		}
		if ev.Actor != "" {
			t.Actors = []string{ev.Actor}
		}
		return RightsOn(pol, dir, m, t).See
	case margen.EventCaseOpened, margen.EventCaseEscalated, margen.EventCaseClosed:
		pol, err := s.policy(ctx, org.ID)
		if err != nil {
			return false
		}
		dir, err := s.directory(ctx, org.ID, d.Member)
		if err != nil {
			s.log.Warn("approval: cannot list members", "org", org.ID, "err", err)
			return false
		}
		c := &margen.FollowUpCase{MemberID: d.Member, Role: d.ApproverRole, Earlier: d.Earlier}
		if ev.Type != margen.EventCaseOpened && len(d.Earlier) == 0 && d.ApproverRole == margen.CaseRoleOwner {
			// An escalation recorded before steps were: it left the
			// default route's approver.
			c.Earlier = []string{margen.CaseRoleSupervisor}
		}
		t := s.caseTarget(ctx, org.ID, pol, c)
		if ev.Actor != "" {
			t.Actors = []string{ev.Actor}
		}
		return RightsOn(pol, dir, m, t).See
	}
	return margen.AccessRank(m.Access) >= margen.AccessRank(margen.AccessSupervisor)
}

// RequestException records a request for something no grant covers: a
// decision with outcome needs_approval and an approval request of kind
// exception (action "exception", amount 0), routed to the policy's default
// approval route, or to owner with SLA 1h and on_timeout deny when the
// policy has none (or nobody holds the route's role). A customer reference,
// when given, creates the customer on first sight.
//
// When idem is given, its record, rendered from the ExceptionResult, is
// stored with the request.
func (s *Service) RequestException(ctx context.Context, org *margen.Org, m *margen.Member, x ExceptionRequest, idem *margen.IdemWrite[ExceptionResult]) (*margen.Decision, *margen.Approval, error) {
	if org == nil || m == nil {
		return nil, nil, margen.Errorf(margen.EUNAUTHORIZED, "error.unauthorized")
	}
	if !m.Active {
		return nil, nil, margen.Errorf(margen.EFORBIDDEN, "error.member_inactive")
	}
	if err := validateException(&x); err != nil {
		return nil, nil, err
	}
	pol, version, err := s.eng.Policy(ctx, org.ID)
	if err != nil {
		return nil, nil, err
	}
	rt, ok := pol.DefaultApproval()
	if !ok {
		rt = policy.Route{Approver: OwnerRole, SLA: DefaultSLA, OnTimeout: policy.OnTimeoutDeny}
	}
	if to := s.servable(ctx, org.ID, pol, rt.Approver, m.ID); to != rt.Approver {
		rt.Approver = to
		rt.OnTimeout, rt.EscalateTo = routeAfter(pol, 0, to)
	}
	if rt.SLA <= 0 {
		rt.SLA = DefaultSLA
	}
	now := s.clock.Now()

	var cusID string
	var cus *margen.Customer // created with the request if it is new
	if in := x.Customer; in.Ref != "" {
		cusID = margen.CustomerID(org.ID, in.Ref)
		tags := in.Tags
		if tags == nil {
			tags = []string{}
		}
		cus = &margen.Customer{ID: cusID, OrgID: org.ID, Ref: in.Ref, Name: in.Name, Contact: in.Contact,
			Tags: tags, CreatedAt: now}
	}
	d := &margen.Decision{
		ID:            margen.NewID("dec"),
		OrgID:         org.ID,
		MemberID:      m.ID,
		CustomerID:    cusID,
		Action:        ExceptionAction,
		Currency:      org.Currency,
		Reason:        x.Reason,
		Context:       x.Context,
		Outcome:       margen.OutcomeNeedsApproval,
		PolicyVersion: version,
		Explanation: margen.Explanation{Code: "exception", Args: map[string]any{
			"description": x.Description, "approver": rt.Approver, "sla": rt.SLA.String()}},
		Budgets:   []margen.BudgetView{},
		CreatedAt: now,
	}
	a := &margen.Approval{
		ID:           margen.NewID("apr"),
		OrgID:        org.ID,
		DecisionID:   d.ID,
		Kind:         margen.ApprovalKindException,
		MemberID:     m.ID,
		CustomerID:   cusID,
		Action:       ExceptionAction,
		Description:  x.Description,
		ApproverRole: rt.Approver,
		SLA:          rt.SLA,
		DueAt:        now.Add(rt.SLA),
		OnTimeout:    rt.OnTimeout,
		EscalateTo:   rt.EscalateTo,
		Status:       margen.ApprovalPending,
		CreatedAt:    now,
	}
	d.ApprovalID = a.ID
	rec, err := idem.For(ExceptionResult{Decision: d, Approval: a})
	if err != nil {
		return nil, nil, err
	}
	var w *margen.ExceptionWrite
	err = s.st.RequestException(ctx, org.ID, m.ID, func(st *margen.ExceptionState) (*margen.ExceptionWrite, error) {
		w, err = Exception(st, *d, *a, cus, rec)
		return w, err
	})
	if err != nil {
		return nil, nil, err
	}
	s.notify(org.ID)
	return &w.Decision, &w.Approval, nil
}

func validateException(x *ExceptionRequest) error {
	switch {
	case x.Description == "":
		return margen.Invalid("description", "error.required", "field", "description")
	case len(x.Description) > maxDescription:
		return margen.Invalid("description", "error.too_long", "field", "description", "max", maxDescription)
	case len(x.Reason) > maxReason:
		return margen.Invalid("reason", "error.too_long", "field", "reason", "max", maxReason)
	case len(x.Customer.Ref) > maxRef:
		return margen.Invalid("customer.ref", "error.too_long", "field", "customer.ref", "max", maxRef)
	case len(x.Customer.Name) > maxName:
		return margen.Invalid("customer.name", "error.too_long", "field", "customer.name", "max", maxName)
	case len(x.Customer.Contact) > maxName:
		return margen.Invalid("customer.contact", "error.too_long", "field", "customer.contact", "max", maxName)
	case len(x.Customer.Tags) > maxTags:
		return margen.Invalid("customer.tags", "error.too_many", "field", "customer.tags", "max", maxTags)
	case slices.ContainsFunc(x.Customer.Tags, func(t string) bool { return len(t) > policy.MaxTagLen }):
		return margen.Invalid("customer.tags", "error.too_long", "field", "customer.tags", "max", policy.MaxTagLen)
	case len(x.Context) > maxContext:
		return margen.Invalid("context", "error.too_long", "field", "context", "max", maxContext)
	}
	if len(x.Context) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(x.Context, &obj); err != nil || obj == nil {
			return margen.Invalid("context", "error.context_object")
		}
	}
	return nil
}

// Sweep runs one SLA scan: every request due now gets its on_timeout
// (escalate, approve, deny), exactly once even when several processes sweep
// at the same time (a request another sweeper or an approver resolved first
// is skipped silently). It returns how many requests this call resolved.
//
// The scan walks the due requests in (due time, id) order, so a request
// whose timeout fails (it is retried when the walk comes round again) never
// hides the ones behind it, and an organisation whose policy cannot be
// loaded is skipped for the rest of the sweep after its first failure, so
// it neither floods the log nor holds up the other organisations'
// escalations. A sweep reads at most sweepPages batches and the next one
// resumes where it stopped (requests that fall due later always sort after
// that point), so a backlog of failing requests costs each sweep a bounded
// read and delays the others by at most its length over that bound, in
// sweeps; in the ordinary case a sweep reads every due request and the next
// one starts from the first.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	now := s.clock.Now()
	var (
		mu       sync.Mutex
		done     int
		firstErr error
		after    = s.sweepAt
		broken   = map[string]bool{} // organisations whose policy failed
	)
	s.sweepAt = margen.DueAfter{} // unless this sweep stops short of the end
	for page := 0; ; page++ {
		if page == sweepPages {
			s.sweepAt = after
			break
		}
		if err := ctx.Err(); err != nil {
			return done, err
		}
		due, err := s.st.DueApprovals(ctx, now, after, sweepBatch)
		if err != nil {
			return done, err
		}
		if len(due) == 0 {
			break
		}
		after = margen.DueAfter{DueAt: due[len(due)-1].DueAt, ID: due[len(due)-1].ID}
		todo := make(chan *margen.Approval, len(due))
		for i := range due {
			todo <- &due[i]
		}
		close(todo)
		var wg sync.WaitGroup
		for range min(sweepWorkers, len(due)) {
			wg.Go(func() {
				for a := range todo {
					if ctx.Err() != nil {
						return
					}
					mu.Lock()
					skip := broken[a.OrgID]
					mu.Unlock()
					if skip {
						continue
					}
					ok, polErr, err := s.timeout(ctx, a)
					mu.Lock()
					if ok {
						done++
					}
					if err != nil && firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					// An organisation whose policy fails is logged once,
					// by the worker that found it first.
					firstBroken := polErr && !broken[a.OrgID]
					if polErr {
						broken[a.OrgID] = true
					}
					mu.Unlock()
					switch {
					case err == nil || ctx.Err() != nil:
					case firstBroken:
						s.log.Warn("approval: the organisation's policy cannot be loaded: its overdue requests wait for a later sweep",
							"org", a.OrgID, "err", err)
					case !polErr:
						s.log.Warn("approval: timeout not applied", "org", a.OrgID, "approval", a.ID, "err", err)
					}
				}
			})
		}
		wg.Wait()
		if len(due) < sweepBatch {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return done, err
	}
	// Follow-up cases of low survey answers time out here too.
	n, err := s.sweepCases(ctx, now)
	done += n
	if err != nil && firstErr == nil {
		firstErr = err
	}
	return done, firstErr
}

// timeout applies a due request's on_timeout. ok is false when someone
// else resolved it first; polErr says err is the organisation's policy
// failing to load, not this request's.
func (s *Service) timeout(ctx context.Context, a *margen.Approval) (ok, polErr bool, err error) {
	pol, err := s.policy(ctx, a.OrgID)
	if err != nil {
		return false, true, err
	}
	now := s.clock.Now()
	switch a.OnTimeout {
	case policy.OnTimeoutEscalate:
		to := a.EscalateTo
		if to == "" || to == a.ApproverRole {
			to = OwnerRole
		}
		if a.ApproverRole == OwnerRole {
			// Nowhere above the owners: deny.
			err = s.resolve(ctx, a, margen.ApprovalExpired, "", now)
			break
		}
		_, err = s.escalate(ctx, a.OrgID, pol, a, to, SystemActor, "", now)
	case policy.OnTimeoutApprove:
		err = s.resolve(ctx, a, margen.ApprovalApproved, margen.NewID("act"), now)
	default:
		err = s.resolve(ctx, a, margen.ApprovalExpired, "", now)
	}
	if margen.IsCode(err, margen.ECONFLICT) {
		return false, false, nil
	}
	return err == nil, false, err
}

func (s *Service) resolve(ctx context.Context, a *margen.Approval, status, actID string, now time.Time) error {
	r := margen.Resolution{ApprovalID: a.ID, Level: a.Level, Status: status, Actor: SystemActor, At: now, ActID: actID}
	if _, err := s.st.ResolveApproval(ctx, a.OrgID, r.ApprovalID, r.Level, Resolver(r, nil)); err != nil {
		return err
	}
	s.resolved(a.OrgID, status, a, now)
	return nil
}

// RunSLA sweeps every interval until ctx is done.
func (s *Service) RunSLA(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			s.log.Error("approval: SLA sweep failed", "resolved", n, "err", err)
		} else if n > 0 {
			s.log.Info("approval: SLA sweep", "resolved", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cachedDir is a short-lived cache of an organisation's members, for
// routing by team.
type cachedDir struct {
	at time.Time
	*Directory
}

// directory returns the organisation's members, cached for dirTTL (by the
// injected clock); a member id not in the cache (need) reloads it.
func (s *Service) directory(ctx context.Context, orgID, need string) (*Directory, error) {
	now := s.clock.Now()
	s.dirMu.Lock()
	d := s.dirs[orgID]
	s.dirMu.Unlock()
	if d != nil {
		age := now.Sub(d.at)
		if age >= 0 && age < dirTTL && (need == "" || d.byID[need] != nil) {
			return d.Directory, nil
		}
	}
	ms, err := s.st.ListMembers(ctx, orgID)
	if err != nil {
		return nil, err
	}
	d = &cachedDir{at: now, Directory: NewDirectory(ms)}
	s.dirMu.Lock()
	s.dirs[orgID] = d
	s.dirMu.Unlock()
	return d.Directory, nil
}
