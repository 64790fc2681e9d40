package web

import (
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
)

// Invitations: an owner or manager invites a member with a one-time link
// (256 random bits, only its SHA-256 stored, expiring, single use); the
// invitee opens it, chooses a login and password and is signed in.

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 72 * time.Hour

const maxToken = 100

type inviteForm struct {
	Name, Access, Role, Team string
	Link                     string // the link, shown once after creation
}

// invite creates an invitation and shows its link once.
func (s *server) invite(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	p := s.newPage(r, "desk.people.title", nil)
	f := inviteForm{Name: strings.TrimSpace(r.PostFormValue("name")), Access: r.PostFormValue("access"),
		Role: r.PostFormValue("role"), Team: r.PostFormValue("team")}
	problem, err := s.assignment(r, p, nil, f.Access, f.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if problem == "" && (f.Name == "" || utf8.RuneCountInString(f.Name) > maxName || margen.CheckText("name", f.Name, 0, false) != nil) {
		problem = "desk.invite.error.name"
	}
	if problem != "" {
		s.renderInvite(w, r, p, f, problem)
		return
	}
	plain, hash := auth.NewToken()
	now := s.clock.Now()
	inv := &margen.Invitation{OrgID: p.Org.ID, TokenHash: hash, Name: f.Name, Access: f.Access, Role: f.Role, Team: f.Team,
		CreatedBy: p.Member.ID, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	err = s.store.CreateInvitation(r.Context(), inv, p.Member.ID)
	if margen.IsCode(err, margen.ENOTFOUND) {
		s.renderInvite(w, r, p, f, "desk.member.error.team")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	scheme := "https"
	if !s.secure {
		scheme = "http"
	}
	f = inviteForm{Link: scheme + "://" + r.Host + "/invite/" + plain}
	p.Notice = p.T("desk.invite.created", "name", inv.Name)
	s.renderPeopleWith(w, r, http.StatusOK, p, teamForm{}, f)
}

func (s *server) renderInvite(w http.ResponseWriter, r *http.Request, p *page, f inviteForm, key string) {
	p.Error = p.T(key)
	s.renderPeopleWith(w, r, http.StatusBadRequest, p, teamForm{}, f)
}

type acceptData struct {
	Name, Login, Language string
	Org                   string
	Gone                  string // why the link no longer works, in the page's language
}

// invitation finds the link's invitation; false means a page was sent.
func (s *server) invitation(w http.ResponseWriter, r *http.Request) (*margen.Invitation, bool) {
	tok := r.PathValue("token")
	if len(tok) > maxToken || !strings.HasPrefix(tok, auth.TokenPrefix) {
		s.errorPage(w, r, http.StatusNotFound, "desk.invite.not_found")
		return nil, false
	}
	inv, err := s.store.InvitationByHash(r.Context(), auth.HashToken(tok))
	if margen.IsCode(err, margen.ENOTFOUND) {
		s.errorPage(w, r, http.StatusNotFound, "desk.invite.not_found")
		return nil, false
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return inv, true
}

// invitationGone answers the kind page of a used or expired link.
func (s *server) invitationGone(w http.ResponseWriter, r *http.Request, inv *margen.Invitation) bool {
	key := ""
	switch {
	case inv.UsedAt != nil:
		key = "error.invitation_used"
	case !s.clock.Now().Before(inv.ExpiresAt):
		key = "error.invitation_expired"
	}
	if key == "" {
		return false
	}
	p := s.newPage(r, "desk.invite.title", nil)
	p.Data = acceptData{Gone: p.T(key)}
	s.render(w, r, http.StatusGone, "invite", "", p)
	return true
}

func (s *server) invitePage(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.invitation(w, r)
	if !ok || s.invitationGone(w, r, inv) {
		return
	}
	org, err := s.store.OrgByID(r.Context(), inv.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := s.newPage(r, "desk.invite.title", nil)
	p.Data = acceptData{Name: inv.Name, Org: org.Name, Language: p.Lang}
	s.render(w, r, http.StatusOK, "invite", "", p)
}

// acceptInvite creates the member, uses the link and signs them in.
func (s *server) acceptInvite(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	inv, ok := s.invitation(w, r)
	if !ok || s.invitationGone(w, r, inv) {
		return
	}
	org, err := s.store.OrgByID(r.Context(), inv.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := acceptData{Name: strings.TrimSpace(r.PostFormValue("name")), Login: strings.TrimSpace(r.PostFormValue("login")),
		Language: r.PostFormValue("language"), Org: org.Name}
	p := s.newPage(r, "desk.invite.title", d)
	password := r.PostFormValue("password")
	var problem string
	switch {
	case d.Name == "" || utf8.RuneCountInString(d.Name) > maxName || margen.CheckText("name", d.Name, 0, false) != nil:
		problem = "desk.invite.error.name"
	case !margen.ValidLogin(d.Login):
		problem = "setup.error.login"
	case d.Language != "es" && d.Language != "en":
		problem = "setup.error.language"
	default:
		problem = passwordProblem(password, r.PostFormValue("password2"))
	}
	if problem != "" {
		p.Error = p.T(problem)
		s.render(w, r, http.StatusBadRequest, "invite", "", p)
		return
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m := &margen.Member{Login: d.Login, Name: d.Name, Language: d.Language, PasswordHash: hash}
	if _, err := s.store.AcceptInvitation(r.Context(), inv.TokenHash, m, s.clock.Now()); err != nil {
		if e, ok := err.(*margen.Error); ok && e.Code == margen.ECONFLICT {
			if e.Key == "error.login_taken" {
				p.Error = p.message(e)
				s.render(w, r, http.StatusConflict, "invite", "", p)
				return
			}
			// Used or expired meanwhile.
			p.Data = acceptData{Gone: p.message(e)}
			s.render(w, r, http.StatusGone, "invite", "", p)
			return
		}
		s.fail(w, r, err)
		return
	}
	if err := s.startSession(r, m); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/counter", http.StatusSeeOther)
}
