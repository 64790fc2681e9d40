package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// policyView is a policy version as the API shows it; Source is left out of
// lists.
type policyView struct {
	Version   int       `json:"version"`
	Active    bool      `json:"active"`
	CreatedBy string    `json:"created_by"`
	Note      string    `json:"note,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Source    string    `json:"source,omitempty"`
}

func viewPolicy(pv *margen.PolicyVersion, withSource bool) policyView {
	v := policyView{Version: pv.Version, Active: pv.Active, CreatedBy: pv.CreatedBy, Note: pv.Note, CreatedAt: pv.CreatedAt}
	if withSource {
		v.Source = pv.Source
	}
	return v
}

var yamlTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}

func (s *server) publishPolicy(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !slices.Contains(yamlTypes, mt) {
		s.problem(w, r, margen.Invalid("Content-Type", "error.content_type"))
		return
	}
	src, err := readBody(w, r, maxPolicyBody)
	if err == nil {
		// The source is stored as text: valid UTF-8, no NUL.
		err = margen.CheckText("body", string(src), 0, margen.TextBlock)
	}
	if err != nil {
		s.problem(w, r, err)
		return
	}
	pol, err := policy.Parse(src)
	if err != nil {
		var pe policy.Errors
		if !errors.As(err, &pe) {
			s.problem(w, r, err)
			return
		}
		s.problem(w, r, &margen.Error{Code: margen.EINVALID, Key: "error.policy_invalid", Args: map[string]any{"count": len(pe)}, Err: pe})
		return
	}
	if pol.Currency() != st.org.Currency {
		s.problem(w, r, margen.Invalid("currency", "error.policy_currency", "currency", pol.Currency(), "expected", st.org.Currency))
		return
	}
	if err := s.checkRoles(r, st, pol); err != nil {
		s.problem(w, r, err)
		return
	}
	note := r.URL.Query().Get("note")
	if len(note) > maxNote {
		s.problem(w, r, margen.Invalid("note", "error.too_long", "field", "note", "max", maxNote))
		return
	}
	ic, done := s.beginIdem(w, r, src)
	if done {
		return
	}
	defer ic.release()

	mu, _ := s.publishLocks.LoadOrStore(st.org.ID, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	next := 1
	if all, err := s.store.ListPolicies(r.Context(), st.org.ID); err != nil {
		s.problem(w, r, err)
		return
	} else if len(all) > 0 {
		next = all[0].Version + 1
	}
	pv := &margen.PolicyVersion{OrgID: st.org.ID, Version: next, Source: string(src), Active: true,
		CreatedBy: st.member.ID, Note: note, CreatedAt: s.clock.Now()}
	out, _ := json.Marshal(viewPolicy(pv, false))
	err = s.store.PublishPolicy(r.Context(), pv, ic.record(http.StatusCreated, out))
	if err == nil {
		s.engine.Invalidate(st.org.ID)
		if pv.Version != next {
			// Another app instance published at the same moment: answer the
			// truth; a replay of this key would name the predicted version.
			s.log.Warn("policy version differs from the one announced", "request_id", reqID(r),
				"org", st.org.ID, "announced", next, "published", pv.Version)
			out, _ = json.Marshal(viewPolicy(pv, false))
		}
	}
	s.respond(w, r, ic, err, http.StatusCreated, out)
}

// checkRoles refuses a policy that leaves an active member without a role:
// their every decision would be refused.
func (s *server) checkRoles(r *http.Request, st *reqState, pol *policy.Policy) error {
	members, err := s.store.ListMembers(r.Context(), st.org.ID)
	if err != nil {
		return err
	}
	var names []string
	var list []ProblemError
	for _, m := range members {
		if !m.Active || pol.HasRole(m.Role) {
			continue
		}
		names = append(names, fmt.Sprintf("%s (%s)", m.Login, m.Role))
		list = append(list, ProblemError{Path: "roles", Message: fmt.Sprintf("active member %q has role %q, which this policy does not define", m.Login, m.Role)})
	}
	if len(names) == 0 {
		return nil
	}
	e := margen.Invalid("roles", "error.policy_roles_missing", "members", strings.Join(names, ", "))
	return &detailedError{err: e, list: list}
}

func (s *server) listPolicies(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	all, err := s.store.ListPolicies(r.Context(), st.org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items := make([]policyView, 0, len(all))
	for i := range all {
		items = append(items, viewPolicy(&all[i], false))
	}
	writeJSON(w, http.StatusOK, list(items, ""))
}

func (s *server) activePolicy(w http.ResponseWriter, r *http.Request) {
	pv, err := s.store.ActivePolicy(r.Context(), state(r).org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewPolicy(pv, true))
}

func (s *server) getPolicy(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		s.problem(w, r, margen.NotFound("policy"))
		return
	}
	pv, err := s.store.PolicyByVersion(r.Context(), state(r).org.ID, v)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewPolicy(pv, true))
}

func (s *server) listAudit(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.problem(w, r, margen.Invalid("after", "error.invalid_number", "field", "after"))
			return
		}
		after = n
	}
	p, err := page(q)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, err := s.store.ListAudit(r.Context(), st.org.ID, after, p.Limit+1)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	items, next := cut(items, p.Limit, func(e margen.AuditEntry) string { return strconv.FormatInt(e.Seq, 10) })
	writeJSON(w, http.StatusOK, list(items, next))
}

// ledgerCheck is the answer of GET /api/v1/ledger/check.
type ledgerCheck struct {
	OK     bool                `json:"ok"`
	Ledger margen.LedgerReport `json:"ledger"`
	Audit  auditCheck          `json:"audit"`
}

type auditCheck struct {
	OK      bool  `json:"ok"`
	Checked int64 `json:"checked"`
	Broken  int64 `json:"broken"` // first broken seq, 0 when intact
}

func (s *server) checkLedger(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	rep, err := s.store.CheckLedger(r.Context(), st.org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	broken, checked, err := s.store.VerifyAudit(r.Context(), st.org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	if rep.Mismatches == nil {
		rep.Mismatches = []margen.LedgerMismatch{}
	}
	out := ledgerCheck{Ledger: rep, Audit: auditCheck{OK: broken == 0, Checked: checked, Broken: broken}}
	out.OK = rep.OK() && out.Audit.OK
	writeJSON(w, http.StatusOK, out)
}
