package web

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/decision"
)

// The manager's desk, first half: people (members and teams) and the
// policy editor (desk_policy.go). Managers and owners only; every change
// to a member asks margen.MayManage.

type peopleData struct {
	Members     []margen.Member
	Teams       []margen.Team
	Team        teamForm
	Invite      inviteForm
	Invitations []margen.Invitation
	Roles       []choice
	Access      []string // the levels the asking member may grant
	Now         time.Time
}

type teamForm struct{ Slug, Name, Error string }

func (s *server) people(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk.people.title", nil)
	s.renderPeople(w, r, http.StatusOK, p, teamForm{})
}

func (s *server) renderPeople(w http.ResponseWriter, r *http.Request, status int, p *page, tf teamForm) {
	s.renderPeopleWith(w, r, status, p, tf, inviteForm{})
}

func (s *server) renderPeopleWith(w http.ResponseWriter, r *http.Request, status int, p *page, tf teamForm, inv inviteForm) {
	ctx := r.Context()
	members, err := s.store.ListMembers(ctx, p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	teams, err := s.store.ListTeams(ctx, p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	invs, err := s.store.ListInvitations(ctx, p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	roles, err := s.roleChoices(r, p, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = peopleData{Members: members, Teams: teams, Team: tf, Invite: inv, Invitations: invs, Roles: roles, Access: grantable(p.Member), Now: s.clock.Now()}
	s.render(w, r, status, "desk_people", "", p)
}

// addTeam creates a team.
func (s *server) addTeam(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	p := s.newPage(r, "desk.people.title", nil)
	tf := teamForm{Slug: strings.TrimSpace(r.PostFormValue("slug")), Name: strings.TrimSpace(r.PostFormValue("name"))}
	switch {
	case !margen.ValidSlug(tf.Slug):
		tf.Error = p.T("desk.team.error.slug")
	case tf.Name == "" || utf8.RuneCountInString(tf.Name) > maxName || margen.CheckText("name", tf.Name, 0, false) != nil:
		tf.Error = p.T("desk.team.error.name")
	}
	if tf.Error == "" {
		err := s.store.CreateTeam(r.Context(), &margen.Team{OrgID: p.Org.ID, Slug: tf.Slug, Name: tf.Name, CreatedAt: s.clock.Now()}, p.Member.ID)
		switch {
		case margen.IsCode(err, margen.ECONFLICT):
			tf.Error = p.T("desk.team.error.taken")
		case err != nil:
			s.fail(w, r, err)
			return
		}
	}
	if tf.Error != "" {
		s.renderPeople(w, r, http.StatusBadRequest, p, tf)
		return
	}
	http.Redirect(w, r, "/desk/people", http.StatusSeeOther)
}

type memberData struct {
	Target   margen.Member
	Teams    []margen.Team
	Roles    []choice
	Access   []string // the levels the asking member may grant
	Password string   // a new one-time password, shown once
}

type choice struct{ ID, Label string }

// target loads the member a desk page is about; ids of other
// organisations are not found.
func (s *server) target(w http.ResponseWriter, r *http.Request, p *page) (*margen.Member, bool) {
	m, err := s.store.MemberByID(r.Context(), p.Org.ID, r.PathValue("id"))
	if err == nil && !margen.MayManage(p.Member, m, m.Access) {
		err = margen.Errorf(margen.EFORBIDDEN, "error.forbidden")
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return m, true
}

// memberForm starts a form of the member page: the form read, the member
// of the path found and the signed-in member allowed to manage them.
func (s *server) memberForm(w http.ResponseWriter, r *http.Request) (*page, *margen.Member, bool) {
	if !s.form(w, r) {
		return nil, nil, false
	}
	p := s.newPage(r, "desk.member.title", nil)
	m, ok := s.target(w, r, p)
	return p, m, ok
}

// assignment checks the access level and role a manager gives, to a
// member (target) or to an invitation (target nil): the catalogue key of
// what is wrong with the form, or "" when it is right; a level the manager
// may not give is a forbidden error (the 403 page).
func (s *server) assignment(r *http.Request, p *page, target *margen.Member, access, role string) (string, error) {
	if margen.AccessRank(access) == 0 {
		return "desk.member.error.access", nil
	}
	current := ""
	if target == nil {
		target = &margen.Member{Access: access}
	} else {
		current = target.Role
	}
	if !margen.MayManage(p.Member, target, access) {
		return "", margen.Errorf(margen.EFORBIDDEN, "error.forbidden")
	}
	roles, err := s.roleChoices(r, p, current)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(roles, func(c choice) bool { return c.ID == role }) {
		return "desk.member.error.role", nil
	}
	return "", nil
}

func (s *server) memberPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk.member.title", nil)
	m, ok := s.target(w, r, p)
	if !ok {
		return
	}
	s.renderMember(w, r, http.StatusOK, p, m, "")
}

func (s *server) renderMember(w http.ResponseWriter, r *http.Request, status int, p *page, m *margen.Member, password string) {
	ctx := r.Context()
	teams, err := s.store.ListTeams(ctx, p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	roles, err := s.roleChoices(r, p, m.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = memberData{Target: *m, Teams: teams, Roles: roles, Access: grantable(p.Member), Password: password}
	s.render(w, r, status, "desk_member", "", p)
}

// roleChoices are the active policy's roles (and the member's current
// one, if the policy lost it), labelled in the page's language.
func (s *server) roleChoices(r *http.Request, p *page, current string) ([]choice, error) {
	var out []choice
	pol, _, err := s.engine.Policy(r.Context(), p.Org.ID)
	if err != nil && !decision.IsNoPolicy(err) {
		return nil, err
	}
	if pol != nil {
		for _, ro := range pol.Roles() {
			out = append(out, choice{ID: ro.ID, Label: label(ro.Label, p.Lang, ro.ID)})
		}
	}
	if current != "" && !slices.ContainsFunc(out, func(c choice) bool { return c.ID == current }) {
		out = append(out, choice{ID: current, Label: current})
	}
	return out, nil
}

// updateMember sets a member's access level, role and team.
func (s *server) updateMember(w http.ResponseWriter, r *http.Request) {
	p, m, ok := s.memberForm(w, r)
	if !ok {
		return
	}
	access, role, team := r.PostFormValue("access"), r.PostFormValue("role"), r.PostFormValue("team")
	problem, err := s.assignment(r, p, m, access, role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if problem != "" {
		p.Error = p.T(problem)
		s.renderMember(w, r, http.StatusBadRequest, p, m, "")
		return
	}
	err = s.store.UpdateMember(r.Context(), p.Org.ID, m.ID, access, role, team, p.Member.ID)
	if margen.IsCode(err, margen.ENOTFOUND) && team != "" {
		p.Error = p.T("desk.member.error.team")
		s.renderMember(w, r, http.StatusBadRequest, p, m, "")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/desk/people", http.StatusSeeOther)
}

// resetPassword gives a member a new random password, shown once; their
// sessions end (the password is part of margen.MemberStamp).
func (s *server) resetPassword(w http.ResponseWriter, r *http.Request) {
	p, m, ok := s.memberForm(w, r)
	if !ok {
		return
	}
	pw := auth.NewPassword()
	hash, err := auth.HashPassword(pw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.SetMemberPassword(r.Context(), p.Org.ID, m.ID, hash, p.Member.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	m.PasswordHash = hash
	p.Notice = p.T("desk.member.password_reset", "name", m.Name)
	s.renderMember(w, r, http.StatusOK, p, m, pw)
}

// setActive deactivates or reactivates a member; deactivation ends their
// sessions and their API tokens stop working.
func (s *server) setActive(w http.ResponseWriter, r *http.Request) {
	p, m, ok := s.memberForm(w, r)
	if !ok {
		return
	}
	var active bool
	switch r.PostFormValue("active") {
	case "true":
		active = true
	case "false":
	default:
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	if err := s.store.SetMemberActive(r.Context(), p.Org.ID, m.ID, active, p.Member.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/desk/people", http.StatusSeeOther)
}

// MayEdit is what the people list asks of each row.
func (p *page) MayEdit(m margen.Member) bool { return margen.MayManage(p.Member, &m, m.Access) }

// AccessName is an access level in the page's language.
func (p *page) AccessName(a string) string { return p.T("desk.access." + a) }

// requestHash fingerprints a form submission for idempotency.
func requestHash(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// IsManager reports whether the signed-in member may open the desk (the
// layout's link; the route table enforces it).
func (p *page) IsManager() bool {
	return p.Member != nil && margen.AccessAtLeast(p.Member, margen.AccessManager)
}

// grantable are the access levels a member may give (margen.MayManage).
func grantable(me *margen.Member) []string {
	var out []string
	for _, a := range []string{margen.AccessFrontline, margen.AccessSupervisor, margen.AccessManager, margen.AccessOwner} {
		if margen.MayManage(me, &margen.Member{Access: a}, a) {
			out = append(out, a)
		}
	}
	return out
}

// InvitationState is an invitation's state in the page's language.
func (p *page) InvitationState(i margen.Invitation, now time.Time) string {
	switch {
	case i.UsedAt != nil:
		return p.T("desk.invite.state.used")
	case !now.Before(i.ExpiresAt):
		return p.T("desk.invite.state.expired")
	}
	return p.T("desk.invite.state.pending", "until", p.Time(i.ExpiresAt))
}
