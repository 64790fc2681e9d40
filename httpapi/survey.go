package httpapi

import (
	"net/http"
	"strconv"

	"github.com/margenhq/margen"
)

// Survey answers: the customers' own answers, filtered, and those on one
// act. Who sees an answer is who sees its member's records (memberFilter,
// visibleAct): frontline members their own, supervisors and above all.

// surveys is the store's survey side (the SQL store implements it).
func (s *server) surveys() (margen.SurveyStore, error) {
	ss, ok := s.store.(margen.SurveyStore)
	if !ok {
		return nil, margen.Errorf(margen.EINTERNAL, "error.internal")
	}
	return ss, nil
}

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
	ss, err := s.surveys()
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, err := ss.ListSurveyAnswers(r.Context(), st.org.ID, f)
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
	ss, err := s.surveys()
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, err := ss.ListSurveyAnswers(r.Context(), st.org.ID, margen.SurveyAnswerFilter{ActID: a.ID, Page: margen.Page{Limit: 500}})
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list(items, ""))
}
