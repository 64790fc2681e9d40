package approval_test

import (
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/policy"
)

// TestRightsOn: the one rule of who may see and who may answer a request,
// as a table. Whoever may answer may see.
func TestRightsOn(t *testing.T) {
	pol, err := policy.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	m := func(id, access, role, team string) margen.Member {
		return margen.Member{ID: id, Access: access, Role: role, Team: team, Active: true}
	}
	members := []margen.Member{
		m("owner", margen.AccessOwner, "manager", ""),
		m("req", margen.AccessFrontline, "frontline", "front"),
		m("peer", margen.AccessFrontline, "frontline", "front"),
		m("supFront", margen.AccessFrontline, "supervisor", "front"),
		m("supBack", margen.AccessFrontline, "supervisor", "back"),
		m("overseer", margen.AccessSupervisor, "frontline", "back"),
		m("mgr", margen.AccessFrontline, "manager", ""),
		m("reqAlone", margen.AccessFrontline, "frontline", "solo"),
	}
	gone := m("gone", margen.AccessFrontline, "supervisor", "front")
	gone.Active = false
	members = append(members, gone)
	dir := approval.NewDirectory(members)
	byID := map[string]*margen.Member{}
	for i := range members {
		byID[members[i].ID] = &members[i]
	}
	toSup := approval.Target{Requester: "req", Role: "supervisor"}
	cases := []struct {
		who    string
		target approval.Target
		want   approval.Rights
	}{
		{"supFront", toSup, approval.Rights{See: true, Decide: true}},
		{"supBack", toSup, approval.Rights{}}, // front can serve it: not back's
		{"mgr", toSup, approval.Rights{See: true, Decide: true}},
		{"owner", toSup, approval.Rights{See: true, Decide: true}},
		{"req", toSup, approval.Rights{See: true}},      // their own: see, never answer
		{"peer", toSup, approval.Rights{}},              // a peer cannot reach supervisor
		{"overseer", toSup, approval.Rights{See: true}}, // oversight: sees, cannot answer
		{"gone", toSup, approval.Rights{}},              // inactive
		{"supBack", approval.Target{Requester: "reqAlone", Role: "supervisor"}, approval.Rights{See: true, Decide: true}}, // team solo has nobody
		{"supBack", approval.Target{Requester: "req", Role: "manager", Earlier: []string{"supervisor"}}, approval.Rights{}},
		{"supFront", approval.Target{Requester: "req", Role: "manager", Earlier: []string{"supervisor"}}, approval.Rights{See: true}},
		{"peer", approval.Target{Requester: "req", Role: "supervisor", Actors: []string{"peer"}}, approval.Rights{See: true}},
	}
	for _, c := range cases {
		got := approval.RightsOn(pol, dir, byID[c.who], c.target)
		if got != c.want {
			t.Errorf("%s on %+v = %+v, want %+v", c.who, c.target, got, c.want)
		}
		if got.Decide && !got.See {
			t.Errorf("%s may answer what they may not see", c.who)
		}
	}
	if r := approval.RightsOn(pol, dir, nil, toSup); r != (approval.Rights{}) {
		t.Errorf("nobody: %+v", r)
	}
}
