package approval

import (
	"context"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// Follow-up cases of low survey answers are routed, seen, answered and
// timed out by the same rules as approval requests: a case is a request of
// the member who served the customer, routed to the role of the policy's
// default approval route (the member's supervisor, within their team
// first); when its SLA passes it escalates like a request does, to the
// role the route names (escalate_to), then that role's route's, ..., up
// to the owners, one step per SLA. RightsOn decides who may see and who
// may close it at each step; Sweep escalates due cases, each step exactly
// once (CaseEscalation is the pure rule, the store applies it).

func (s *Service) cases() (margen.CaseStore, error) {
	cs, ok := s.st.(margen.CaseStore)
	if !ok {
		return nil, margen.Errorf(margen.EINTERNAL, "error.internal")
	}
	return cs, nil
}

// caseRole is the role a case with stored route role is routed to: the
// owners at the end of the chain; a role an escalation named, while
// someone other than the member holds it; before any escalation ("") the
// default approval route's approver, while someone other than the member
// holds it; else the owners.
func (s *Service) caseRole(ctx context.Context, orgID string, pol *policy.Policy, role, member string) string {
	if role == margen.CaseRoleOwner || pol == nil {
		return OwnerRole
	}
	if role == margen.CaseRoleSupervisor {
		rt, ok := pol.DefaultApproval()
		if !ok || rt.Approver == "" {
			return OwnerRole
		}
		role = rt.Approver
	}
	return s.servable(ctx, orgID, pol, role, member)
}

// caseTarget describes a case for the access rule: routed to its role now,
// and to its earlier roles before (they keep seeing it, as for a request).
func (s *Service) caseTarget(ctx context.Context, orgID string, pol *policy.Policy, c *margen.FollowUpCase) Target {
	t := Target{Requester: c.MemberID, Role: s.caseRole(ctx, orgID, pol, c.Role, c.MemberID)}
	for _, r := range c.Earlier {
		t.Earlier = append(t.Earlier, s.caseRole(ctx, orgID, pol, r, c.MemberID))
	}
	if c.ClosedBy != "" {
		t.Actors = []string{c.ClosedBy}
	}
	return t
}

// CaseNext is where a case routed to role goes when its SLA passes: what a
// request routed there does on timeout when its route escalates (the
// route's escalate_to), else the owners. A case never expires and is never
// approved: deny and approve routes send it to the owners too. After
// MaxCaseSteps steps it goes to the owners whatever the policy says.
func CaseNext(pol *policy.Policy, role string, level int) string {
	if role == OwnerRole || level+1 >= margen.MaxCaseSteps {
		return OwnerRole
	}
	if rt, ok := routeFor(pol, role); ok && rt.EscalateTo != "" && rt.EscalateTo != role {
		return rt.EscalateTo
	}
	return OwnerRole
}

// CaseEscalation is the rule of one escalation step, pure: from the case
// read under the organisation's lock (c), the level and role the sweeper
// saw (level, from: the role as stored) and the role it goes to (to, the
// servable CaseNext), at now, it returns what the store writes: the case
// routed to to, one level up, from appended to its earlier roles, due one
// SLA (the time its last step was given) after now; the step; the audit
// data. A case that is closed, not due, already with the owners or no
// longer at level and from (another sweeper moved it) is ECONFLICT
// "cases.not_due".
func CaseEscalation(c *margen.FollowUpCase, level int, from, to string, now time.Time) (*margen.CaseEscalation, error) {
	if to == "" || now.IsZero() {
		return nil, margen.Errorf(margen.EINTERNAL, "error.internal")
	}
	if !margen.CaseDue(c, now) || c.Level != level || c.Role != from {
		return nil, margen.Errorf(margen.ECONFLICT, "cases.not_due")
	}
	now = now.UTC().Truncate(time.Microsecond)
	start := c.CreatedAt
	if c.EscalatedAt != nil {
		start = *c.EscalatedAt
	}
	sla := c.DueAt.Sub(start)
	if sla <= 0 {
		sla = margen.DefaultCaseSLA
	}
	n := *c
	at := now
	n.Role, n.Level, n.EscalatedAt, n.DueAt = to, c.Level+1, &at, now.Add(sla)
	n.Earlier = append(append([]string(nil), c.Earlier...), from)
	st := margen.CaseStep{ID: margen.NewID("cst"), OrgID: c.OrgID, CaseID: c.ID, Level: c.Level, FromRole: from,
		ToRole: to, At: now, DueAt: n.DueAt}
	ev := margen.FollowUpChanged{CaseID: n.ID, AnswerID: n.AnswerID, ActID: n.ActID, Member: n.MemberID, Team: n.Team,
		ApproverRole: n.Role, FromRole: from, Earlier: n.Earlier, Level: n.Level, Status: n.Status, Scale: n.Scale,
		Score: n.Score, DueAt: n.DueAt.Format(time.RFC3339)}
	return &margen.CaseEscalation{Case: n, Step: st, Event: ev}, nil
}

// CaseEscalator returns CaseEscalation for the store to call with the case
// it read under the lock.
func CaseEscalator(level int, from, to string, now time.Time) func(*margen.FollowUpCase) (*margen.CaseEscalation, error) {
	return func(c *margen.FollowUpCase) (*margen.CaseEscalation, error) {
		return CaseEscalation(c, level, from, to, now)
	}
}

// caseStep is where the service sends due case c: the servable CaseNext of
// the role it is routed to now.
func (s *Service) caseStep(ctx context.Context, c *margen.FollowUpCase) (string, error) {
	pol, err := s.policy(ctx, c.OrgID)
	if err != nil {
		return "", err
	}
	now := s.caseRole(ctx, c.OrgID, pol, c.Role, c.MemberID)
	to := CaseNext(pol, now, c.Level)
	return s.servable(ctx, c.OrgID, pol, to, c.MemberID), nil
}

// CaseRights is what m may do with case c: RightsOn, as for a request.
func (s *Service) CaseRights(ctx context.Context, org *margen.Org, m *margen.Member, c *margen.FollowUpCase) (Rights, error) {
	if org == nil || m == nil || c == nil {
		return Rights{}, nil
	}
	pol, err := s.policy(ctx, org.ID)
	if err != nil {
		return Rights{}, err
	}
	dir, err := s.directory(ctx, org.ID, c.MemberID)
	if err != nil {
		return Rights{}, err
	}
	return RightsOn(pol, dir, m, s.caseTarget(ctx, org.ID, pol, c)), nil
}

// Case returns a case m may see; one m may not see is missing.
func (s *Service) Case(ctx context.Context, org *margen.Org, m *margen.Member, id string) (*margen.FollowUpCase, Rights, error) {
	cs, err := s.cases()
	if err != nil {
		return nil, Rights{}, err
	}
	c, err := cs.GetCase(ctx, org.ID, id)
	if err != nil {
		return nil, Rights{}, err
	}
	r, err := s.CaseRights(ctx, org, m, c)
	if err != nil {
		return nil, Rights{}, err
	}
	if !r.See {
		return nil, Rights{}, margen.NotFound("case")
	}
	return c, r, nil
}

// Cases lists the cases m may see (decide only: those m may close), newest
// first, reading at most maxScan cases.
func (s *Service) Cases(ctx context.Context, org *margen.Org, m *margen.Member, f margen.CaseFilter, decide bool) ([]margen.FollowUpCase, error) {
	out, _, err := s.CasesWithRights(ctx, org, m, f, decide)
	return out, err
}

// CasesWithRights is Cases with what m may do with each case (rights[i] is
// RightsOn for cases[i]), decided once while listing: a page that offers
// the closing form needs no second pass.
func (s *Service) CasesWithRights(ctx context.Context, org *margen.Org, m *margen.Member, f margen.CaseFilter, decide bool) ([]margen.FollowUpCase, []Rights, error) {
	cs, err := s.cases()
	if err != nil {
		return nil, nil, err
	}
	pol, err := s.policy(ctx, org.ID)
	if err != nil {
		return nil, nil, err
	}
	dir, err := s.directory(ctx, org.ID, "")
	if err != nil {
		return nil, nil, err
	}
	want := f.Limit
	if want <= 0 {
		want = scanPage
	}
	out := []margen.FollowUpCase{}
	var rights []Rights
	for scanned := 0; scanned < maxScan; {
		f.Limit = scanPage
		page, err := cs.ListCases(ctx, org.ID, f)
		if err != nil {
			return nil, nil, err
		}
		for i := range page {
			r := RightsOn(pol, dir, m, s.caseTarget(ctx, org.ID, pol, &page[i]))
			if r.See && (!decide || r.Decide) {
				out = append(out, page[i])
				rights = append(rights, r)
				if len(out) == want {
					return out, rights, nil
				}
			}
		}
		scanned += len(page)
		if len(page) < scanPage {
			break
		}
		f.After = page[len(page)-1].ID
	}
	return out, rights, nil
}

// CloseCase closes a case m may decide (a case m may see but not decide is
// EFORBIDDEN "error.not_approver"; one m may not see is missing).
func (s *Service) CloseCase(ctx context.Context, org *margen.Org, m *margen.Member, id string, x margen.CaseClose) (*margen.FollowUpCase, error) {
	// The case first: whoever may not see it learns nothing, not even
	// what a valid closing would need.
	c, r, err := s.Case(ctx, org, m, id)
	if err != nil {
		return nil, err
	}
	if !r.Decide {
		return nil, margen.Errorf(margen.EFORBIDDEN, "error.not_approver")
	}
	if err := x.Validate(); err != nil {
		return nil, err
	}
	cs, err := s.cases()
	if err != nil {
		return nil, err
	}
	out, err := cs.CloseCase(ctx, org.ID, c.ID, x, m.ID, s.clock.Now())
	if err != nil {
		return nil, err
	}
	s.notify(org.ID)
	return out, nil
}

// sweepCases escalates each due case one step along its chain, each step
// exactly once even when several processes sweep (a case another sweeper
// escalated or a supervisor closed first is skipped).
func (s *Service) sweepCases(ctx context.Context, now time.Time) (int, error) {
	cs, ok := s.st.(margen.CaseStore)
	if !ok {
		return 0, nil
	}
	done := 0
	for {
		due, err := cs.DueCases(ctx, now, sweepBatch)
		if err != nil {
			return done, err
		}
		n := 0
		for i := range due {
			if err := ctx.Err(); err != nil {
				return done, err
			}
			c := &due[i]
			to, err := s.caseStep(ctx, c)
			if err == nil {
				_, err = cs.EscalateCase(ctx, c.OrgID, c.ID, CaseEscalator(c.Level, c.Role, to, now))
			}
			switch {
			case err == nil:
				done++
				n++
				s.notify(due[i].OrgID)
			case margen.IsCode(err, margen.ECONFLICT):
			default:
				return done, err
			}
		}
		if len(due) < sweepBatch || n == 0 {
			return done, nil
		}
	}
}
