package approval

import (
	"slices"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// Directory is an organisation's members, as the access rule reads them
// (routing by team needs to know who else could decide a request).
type Directory struct {
	Members []margen.Member
	byID    map[string]*margen.Member
}

// NewDirectory indexes members by id.
func NewDirectory(members []margen.Member) *Directory {
	d := &Directory{Members: members, byID: make(map[string]*margen.Member, len(members))}
	for i := range members {
		d.byID[members[i].ID] = &members[i]
	}
	return d
}

// Target is what the access rule needs of a request: who asked, the role it
// is routed to now, the roles it was routed to before (escalations) and who
// has acted on it (answered or escalated it).
type Target struct {
	Requester string
	Role      string
	Earlier   []string
	Actors    []string
}

// TargetOf describes an approval request (with its history, when loaded)
// for the access rule.
func TargetOf(a *margen.Approval) Target {
	t := Target{Requester: a.MemberID, Role: a.ApproverRole}
	if a.DecidedBy != "" {
		t.Actors = append(t.Actors, a.DecidedBy)
	}
	for _, h := range a.History {
		if h.FromRole != "" {
			t.Earlier = append(t.Earlier, h.FromRole)
		}
		if h.Actor != "" {
			t.Actors = append(t.Actors, h.Actor)
		}
	}
	return t
}

// Rights is what a member may do with one approval request. Decide implies
// See: nobody may answer a request they cannot see.
type Rights struct {
	See    bool // read it: GET, the live stream
	Decide bool // answer it (approve, reject), and have it in the inbox
}

// RightsOn is the one rule of who may see and who may answer an approval
// request; the inbox, GET /approvals/{id}, approve and reject, and the live
// stream all ask it.
//
// A member may decide a request when it is not their own, their policy role
// reaches the role it is routed to (owners: any role), and it is routed to
// their team: the requester's team first, then the organisation (see the
// package doc). A member may see a request they may decide, one routed to
// them before an escalation, their own, one they acted on, and, for
// oversight, every request when their access is supervisor or above (they
// see it but answer only what is routed to them).
//
// It is pure: the caller reads the active policy (nil when there is none)
// and the members.
func RightsOn(pol *policy.Policy, dir *Directory, m *margen.Member, t Target) Rights {
	if m == nil || !m.Active || dir == nil {
		return Rights{}
	}
	var r Rights
	r.Decide = routed(pol, dir, m, t.Role, t.Requester)
	switch {
	case r.Decide,
		margen.AccessRank(m.Access) >= margen.AccessRank(margen.AccessSupervisor),
		m.ID == t.Requester,
		slices.Contains(t.Actors, m.ID):
		r.See = true
	default:
		for _, role := range t.Earlier {
			if routed(pol, dir, m, role, t.Requester) {
				r.See = true
				break
			}
		}
	}
	return r
}

// routed reports whether a request of requester, routed to role, is in m's
// inbox: m can decide the role, and the request is in m's team or the
// requester's team has nobody who can decide it.
func routed(pol *policy.Policy, dir *Directory, m *margen.Member, role, requester string) bool {
	if m.ID == requester || !canApprove(pol, m, role) {
		return false
	}
	if m.Access == margen.AccessOwner || m.Team == "" {
		return true
	}
	req := dir.byID[requester]
	if req == nil || req.Team == "" || req.Team == m.Team {
		return true
	}
	return !dir.teamCan(pol, req.Team, role, requester)
}

// canApprove reports whether m's access or policy role can decide requests
// routed to approverRole: owners everything; others when their policy role
// reaches approverRole (it or a role that inherits it).
func canApprove(pol *policy.Policy, m *margen.Member, approverRole string) bool {
	if m == nil {
		return false
	}
	if m.Access == margen.AccessOwner {
		return true
	}
	return reaches(pol, m.Role, approverRole)
}

// teamCan reports whether an active member of team other than the
// requester (and other than the owners, who are organisation-wide) can
// decide requests routed to role.
func (d *Directory) teamCan(pol *policy.Policy, team, role, requester string) bool {
	for i := range d.Members {
		m := &d.Members[i]
		if m.Active && m.Team == team && m.ID != requester && m.Access != margen.AccessOwner && reaches(pol, m.Role, role) {
			return true
		}
	}
	return false
}
