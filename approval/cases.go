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
// first), or to the owners once escalated. RightsOn decides who may see
// and who may close it; Sweep escalates due cases exactly once.

func (s *Service) cases() (margen.CaseStore, error) {
	cs, ok := s.st.(margen.CaseStore)
	if !ok {
		return nil, margen.Errorf(margen.EINTERNAL, "error.internal")
	}
	return cs, nil
}

// caseRole is the role a case with stored route role is routed to: the
// owners once escalated; before, the default approval route's approver
// when someone other than the member holds it, else the owners.
func (s *Service) caseRole(ctx context.Context, orgID string, pol *policy.Policy, role, member string) string {
	if role == margen.CaseRoleOwner {
		return OwnerRole
	}
	if pol == nil {
		return OwnerRole
	}
	rt, ok := pol.DefaultApproval()
	if !ok || rt.Approver == "" {
		return OwnerRole
	}
	return s.servable(ctx, orgID, pol, rt.Approver, member)
}

// caseTarget describes a case for the access rule.
func (s *Service) caseTarget(ctx context.Context, orgID string, pol *policy.Policy, c *margen.FollowUpCase) Target {
	t := Target{Requester: c.MemberID, Role: s.caseRole(ctx, orgID, pol, c.Role, c.MemberID)}
	if c.EscalatedAt != nil {
		t.Earlier = []string{s.caseRole(ctx, orgID, pol, margen.CaseRoleSupervisor, c.MemberID)}
	}
	if c.ClosedBy != "" {
		t.Actors = []string{c.ClosedBy}
	}
	return t
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

// sweepCases escalates the due cases to the owners, each exactly once even
// when several processes sweep (a case another sweeper escalated or a
// supervisor closed first is skipped).
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
			_, err := cs.EscalateCase(ctx, due[i].OrgID, due[i].ID, now)
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
