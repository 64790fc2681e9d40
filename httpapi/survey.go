package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
)

// Survey answers: the customers' own answers, filtered, and those on one
// act. Who sees an answer is who sees its member's records (memberFilter,
// visibleAct): frontline members their own, supervisors and above all.

func (s *server) listSurveyAnswers(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	f := margen.SurveyAnswerFilter{Page: fetch(p), ActID: q.Get("act"), Team: q.Get("team"), PointID: q.Get("point")}
	if f.Since, f.Until, err = window(q); err != nil {
		s.problem(w, r, err)
		return
	}
	if f.MemberID, err = memberFilter(st, q); err != nil {
		s.problem(w, r, err)
		return
	}
	if v := q.Get("low"); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			s.problem(w, r, margen.Invalid("low", "error.invalid_value", "field", "low", "allowed", "true, false"))
			return
		}
		f.Low = &b
	}
	items, err := s.store.ListSurveyAnswers(r.Context(), st.org.ID, f)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(a margen.SurveyAnswer) string { return a.ID })
	writeJSON(w, http.StatusOK, list(items, next))
}

// actSurveyAnswers lists the customer's answers to an act the member may
// see.
func (s *server) actSurveyAnswers(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	a, err := s.visibleAct(r, st)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, err := s.store.ListSurveyAnswers(r.Context(), st.org.ID, margen.SurveyAnswerFilter{ActID: a.ID, Page: margen.Page{Limit: 500}})
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list(items, ""))
}

// surveyLinkBody is the optional body of POST /api/v1/acts/{id}/survey-link
// (an empty body or {} makes a link only): email sends the link to the
// customer, in language (es or en; default the organisation's), when SMTP
// is configured.
type surveyLinkBody struct {
	Email    string `json:"email"`
	Language string `json:"language"`
}

// newSurveyLink is the answer of POST /api/v1/acts/{id}/survey-link: the
// link, and its token and URL, shown only in this answer (and its replay
// under the same Idempotency-Key): only the token's hash is stored.
type newSurveyLink struct {
	Link  *margen.SurveyLink `json:"link"`
	Token string             `json:"token"`
	URL   string             `json:"url"`
	// Email is the send asked for, when an address was given.
	Email *surveyEmailOut `json:"email,omitempty"`
}

// surveyEmailOut is a queued email send in the API's answer (its address
// is the one the caller sent).
type surveyEmailOut struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Language string `json:"language"`
}

// createSurveyLink makes a survey link for an act the member may see, as
// the counter's "ask the customer" button does: the link is the act's
// member's, in that member's team.
func (s *server) createSurveyLink(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	if s.surveyTokens == nil {
		s.problem(w, r, margen.Errorf(margen.EUNAVAILABLE, "error.unavailable"))
		return
	}
	body, err := readBody(w, r, maxJSONBody)
	var in surveyLinkBody
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		err = decodeStrict(body, &in)
	}
	if err == nil && in.Email != "" {
		switch {
		case !s.surveyEmail:
			err = margen.Invalid("email", "mail.error.off")
		case in.Language != "" && !slices.Contains(i18n.Languages, in.Language):
			err = margen.Invalid("language", "error.invalid_value", "field", "language", "allowed", strings.Join(i18n.Languages, ", "))
		default:
			in.Email, err = margen.ParseEmail(in.Email)
		}
	}
	if err != nil {
		s.problem(w, r, err)
		return
	}
	ic, done := s.beginIdem(w, r, body)
	if done {
		return
	}
	defer ic.release()
	act, err := s.visibleAct(r, st)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	tok, hash := s.surveyTokens.New()
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	l := margen.LinkForAct(act)
	l.ID, l.TokenHash, l.CreatedBy, l.CreatedAt, l.ExpiresAt = margen.NewID("svl"), hash, st.member.ID, now, now.Add(s.surveyExpiry)
	base := s.surveyBase
	if base == "" {
		scheme := "http"
		if r.TLS != nil || s.surveyHTTPS {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	res := newSurveyLink{Link: l, Token: tok, URL: base + "/s/" + tok}
	var e *margen.SurveyEmail
	if in.Email != "" {
		// The link, its send and the send's job commit together.
		e = &margen.SurveyEmail{ID: margen.NewID("sve"), Address: in.Email, Token: tok, CreatedBy: st.member.ID,
			Language: margen.EmailLanguage(in.Language, st.org.Language), Status: margen.EmailQueued}
		res.Email = &surveyEmailOut{ID: e.ID, Status: e.Status, Language: e.Language}
	}
	out, _ := json.Marshal(res)
	if e != nil {
		err = s.store.CreateSurveyLinkEmail(r.Context(), l, e, st.member.ID, ic.record(http.StatusCreated, out))
	} else {
		err = s.store.CreateSurveyLink(r.Context(), l, st.member.ID, ic.record(http.StatusCreated, out))
	}
	s.respond(w, r, ic, err, http.StatusCreated, out)
}
