package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// The member's side of surveys: a survey link made at the counter after an
// act (or for an interaction without one) and shown as a QR code; the act
// with both reactions (the employee's and the customer's own); and the
// manager's desk: the scale, the standing QR codes and their printable
// sheet, refused answers.

func (s *server) surveyRoutes() []route {
	const (
		public    = ""
		frontline = margen.AccessFrontline
		manager   = margen.AccessManager
	)
	return []route{
		{"GET /s/{token}", s.linkSurvey, public},
		{"POST /s/{token}", s.answerLink, public},
		{"GET /q/{token}", s.pointSurvey, public},
		{"POST /q/{token}", s.answerPoint, public},

		{"POST /counter/acts/{id}/survey", s.actSurveyLink, frontline},
		{"POST /counter/survey", s.interactionSurveyLink, frontline},
		{"GET /counter/survey/qr.svg", s.linkQR, frontline},
		{"GET /counter/survey/qr.png", s.linkQR, frontline},
		{"GET /acts/{id}", s.actPage, frontline},
		{"POST /cases/{id}/close", s.closeCase, frontline},

		{"GET /desk/survey", s.surveyDesk, manager},
		{"POST /desk/survey/scale", s.setSurveyScale, manager},
		{"POST /desk/survey/cases", s.setCaseSettings, manager},
		{"POST /desk/survey/points", s.addSurveyPoint, manager},
		{"GET /desk/survey/sheet", s.surveySheet, manager},
		{"GET /desk/survey/points/{id}/qr.svg", s.pointQR, manager},
		{"POST /desk/survey/points/{id}/deactivate", s.deactivateSurveyPoint, manager},
	}
}

// baseURL is the public URL when configured, else this server's address
// as the request reached it: the scheme
// (https when the cookies are secure, that is behind TLS) and the host.
func (s *server) baseURL(r *http.Request) string {
	if s.survey.public != "" {
		return s.survey.public
	}
	scheme := "http"
	if r.TLS != nil || s.secure {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// linkView is the page that shows a new survey link.
type linkView struct {
	Token   string
	URL     string
	Expires string
	ActID   string
}

// actSurveyLink makes a survey link for an act the member may see.
func (s *server) actSurveyLink(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	act, err := s.store.GetAct(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && !margen.SeesAll(st.member) && act.MemberID != st.member.ID {
		err = margen.NotFound("act")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.newSurveyLink(w, r, margen.LinkForAct(act))
}

// interactionSurveyLink makes a survey link for an interaction the member
// logs without an act.
func (s *server) interactionSurveyLink(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	s.newSurveyLink(w, r, &margen.SurveyLink{MemberID: st.member.ID, Team: st.member.Team})
}

func (s *server) newSurveyLink(w http.ResponseWriter, r *http.Request, l *margen.SurveyLink) {
	st := current(r)
	tok, hash := s.survey.tokens.New()
	now := s.clock.Now()
	l.OrgID, l.TokenHash, l.CreatedBy, l.CreatedAt, l.ExpiresAt = st.org.ID, hash, st.member.ID, now, now.Add(s.survey.expiry)
	addr := ""
	if v := r.PostFormValue("email"); s.survey.email && strings.TrimSpace(v) != "" {
		var err error
		if addr, err = margen.ParseEmail(v); err != nil {
			s.errorPage(w, r, http.StatusBadRequest, "mail.error.address")
			return
		}
	}
	var err error
	if addr != "" {
		// The link and its mail's job commit together (the outbox).
		e := &margen.SurveyEmail{Address: addr, Token: tok, CreatedBy: st.member.ID,
			Language: margen.EmailLanguage("", st.org.Language)}
		err = s.store.CreateSurveyLinkEmail(r.Context(), l, e, st.member.ID, nil)
	} else {
		err = s.store.CreateSurveyLink(r.Context(), l, st.member.ID, nil)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := s.newPage(r, "survey.link.title", nil)
	if addr != "" {
		p.Notice = p.T("mail.link.queued", "address", addr)
	}
	p.Data = &linkView{Token: tok, URL: s.baseURL(r) + "/s/" + tok, Expires: p.Time(l.ExpiresAt), ActID: l.ActID}
	s.render(w, r, http.StatusOK, "survey_link", "", p)
}

// linkQR draws the QR code of a survey link the member may see (the token
// is in the query: only its hash is stored).
func (s *server) linkQR(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	tok := r.URL.Query().Get("t")
	if !s.survey.tokens.Valid(tok) {
		s.notFound(w, r)
		return
	}
	l, err := s.store.SurveyLinkByHash(r.Context(), margen.SurveyTokenHash(tok))
	if err == nil && (l.OrgID != st.org.ID || !margen.SeesAll(st.member) && l.MemberID != st.member.ID) {
		err = margen.NotFound("survey")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	format := "svg"
	if strings.HasSuffix(r.URL.Path, ".png") {
		format = "png"
	}
	s.writeQR(w, r, format, s.baseURL(r)+"/s/"+tok)
}

// actView is an act with the employee's reaction and the customer's own
// answers.
type actView struct {
	Act      *margen.Act
	Member   string
	Action   string
	At       string
	Employee []margen.Reaction
	Answers  []answerRow
	Cases    []caseRow
}

type answerRow struct {
	margen.SurveyAnswer
	At string
}

// actPage shows an act to whoever may see it (its member, supervisors and
// above): the employee-observed reaction beside the customer's answer.
func (s *server) actPage(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	act, err := s.store.GetAct(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && !margen.SeesAll(st.member) && act.MemberID != st.member.ID {
		err = margen.NotFound("act")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	answers, err := s.store.ListSurveyAnswers(r.Context(), st.org.ID, margen.SurveyAnswerFilter{ActID: act.ID})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := s.newPage(r, "survey.act.title", nil)
	// Named as the inbox names them: the member, and the action by the
	// policy's label in the reader's language.
	l, err := s.lookup(r.Context(), st.org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := &actView{Act: act, Member: l.member(act.MemberID), Action: l.action(act.Action, p.Lang), At: p.Time(act.CreatedAt)}
	for _, x := range act.Reactions {
		if x.Source == margen.SourceEmployee {
			v.Employee = append(v.Employee, x)
		}
	}
	for _, a := range answers {
		v.Answers = append(v.Answers, answerRow{SurveyAnswer: a, At: p.Time(a.CreatedAt)})
	}
	if v.Cases, err = s.caseRows(r.Context(), p, margen.CaseFilter{ActID: act.ID}, false, "act"); err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = v
	s.render(w, r, http.StatusOK, "survey_act", "", p)
}

// --- the manager's desk ---

type surveyDeskView struct {
	Scale   string
	Scales  []string
	Points  []margen.SurveyPoint
	Teams   []margen.Team
	Kinds   []string
	Answers []answerRow
	Refused []margen.SurveyRefusedCount
	Limits  margen.SurveyLimits
	Form    margen.SurveyPoint
	Cases   caseSettingsView
	// MailOn says survey links can be sent by email; Emails are the latest
	// sends.
	MailOn bool
	Emails []emailRow
}

// emailRow is a survey link sent by email, as the desk lists it.
type emailRow struct {
	margen.SurveyEmail
	Shown string // the address, masked for whoever may not see it whole
	At    string
}

// surveyEmailsShown is how many sends the desk lists.
const surveyEmailsShown = 20

// surveyRecent is how many answers the desk lists.
const surveyRecent = 20

func (s *server) surveyDesk(w http.ResponseWriter, r *http.Request) {
	s.renderSurveyDesk(w, r, http.StatusOK, "", margen.SurveyPoint{Kind: margen.PointTable}, nil)
}

func (s *server) renderSurveyDesk(w http.ResponseWriter, r *http.Request, status int, errMsg string, form margen.SurveyPoint,
	cases *caseSettingsView) {
	st, ctx := current(r), r.Context()
	set, err := s.store.SurveySettings(ctx, st.org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := &surveyDeskView{Scale: set.Scale, Scales: []string{margen.ScaleCSAT, margen.ScaleNPS},
		Kinds: []string{margen.PointSite, margen.PointTable, margen.PointCounter}, Limits: s.survey.limits, Form: form}
	p0 := s.newPage(r, "survey.desk.title", nil)
	if cases != nil {
		v.Cases = *cases
	} else if v.Cases, err = s.caseSettingsView(ctx, p0, st.org.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if v.Points, err = s.store.ListSurveyPoints(ctx, st.org.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if v.Teams, err = s.store.ListTeams(ctx, st.org.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	p := s.newPage(r, "survey.desk.title", v)
	p.Error = errMsg
	answers, err := s.store.ListSurveyAnswers(ctx, st.org.ID, margen.SurveyAnswerFilter{Page: margen.Page{Limit: surveyRecent}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, a := range answers {
		v.Answers = append(v.Answers, answerRow{SurveyAnswer: a, At: p.Time(a.CreatedAt)})
	}
	v.MailOn = s.survey.email
	sends, err := s.store.ListSurveyEmails(ctx, st.org.ID, surveyEmailsShown)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	whole := margen.AccessAtLeast(st.member, margen.AccessManager)
	for _, e := range sends {
		row := emailRow{SurveyEmail: e, Shown: e.Address, At: p.Time(e.CreatedAt)}
		if !whole {
			row.Shown = margen.MaskEmail(e.Address)
		}
		v.Emails = append(v.Emails, row)
	}
	if v.Refused, err = s.store.SurveyRefused(ctx, st.org.ID, s.clock.Now().Add(-7*24*time.Hour)); err != nil {
		s.fail(w, r, err)
		return
	}
	if n := s.sessions.PopString(ctx, "survey_notice"); n != "" {
		p.Notice = p.T(n)
	}
	s.render(w, r, status, "survey_desk", "", p)
}

func (s *server) setSurveyScale(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	err := s.store.SetSurveyScale(r.Context(), st.org.ID, r.PostFormValue("scale"), st.member.ID)
	if margen.IsCode(err, margen.EINVALID) {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.sessions.Put(r.Context(), "survey_notice", "survey.desk.scale_saved")
	http.Redirect(w, r, "/desk/survey", http.StatusSeeOther)
}

func (s *server) addSurveyPoint(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	tok, hash := s.survey.tokens.New()
	pt := &margen.SurveyPoint{OrgID: st.org.ID, Name: r.PostFormValue("name"), Kind: r.PostFormValue("kind"),
		Team: r.PostFormValue("team"), AskServer: r.PostFormValue("ask_server") == "on", Token: tok, TokenHash: hash,
		CreatedBy: st.member.ID, CreatedAt: s.clock.Now()}
	err := s.store.CreateSurveyPoint(r.Context(), pt, st.member.ID)
	if margen.IsCode(err, margen.EINVALID) || margen.IsCode(err, margen.ENOTFOUND) {
		p := s.newPage(r, "survey.desk.title", nil)
		msg := p.message(err)
		if margen.IsCode(err, margen.ENOTFOUND) {
			msg = p.T("survey.error.point_team")
		}
		s.renderSurveyDesk(w, r, http.StatusBadRequest, msg, *pt, nil)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.sessions.Put(r.Context(), "survey_notice", "survey.desk.point_added")
	http.Redirect(w, r, "/desk/survey", http.StatusSeeOther)
}

// deactivateSurveyPoint takes a standing QR code out of service: the
// printed code then shows the page of an unknown one; its answers stay.
func (s *server) deactivateSurveyPoint(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	if err := s.store.DeactivateSurveyPoint(r.Context(), st.org.ID, r.PathValue("id"), st.member.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.sessions.Put(r.Context(), "survey_notice", "surveydemo.point_deactivated")
	http.Redirect(w, r, "/desk/survey", http.StatusSeeOther)
}

// sheetView is the printable sheet of standing QR codes.
type sheetView struct {
	Receipt  bool
	Business string
	Points   []margen.SurveyPoint
}

// surveySheet is the printable sheet: A4 with several codes, or one code
// after another at a receipt printer's 80 mm (?size=receipt).
func (s *server) surveySheet(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	pts, err := s.store.ListSurveyPoints(r.Context(), st.org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := &sheetView{Receipt: r.URL.Query().Get("size") == "receipt", Business: st.org.Name}
	for _, p := range pts {
		if p.Active {
			v.Points = append(v.Points, p)
		}
	}
	s.render(w, r, http.StatusOK, "survey_sheet", "", s.newPage(r, "survey.sheet.title", v))
}

// pointQR draws a standing QR code of the organisation.
func (s *server) pointQR(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	pts, err := s.store.ListSurveyPoints(r.Context(), st.org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, p := range pts {
		if p.ID == r.PathValue("id") {
			s.writeQR(w, r, "svg", s.baseURL(r)+"/q/"+p.Token)
			return
		}
	}
	s.notFound(w, r)
}
