package httpapi

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
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
	// Warnings are what the published file says that will not work as
	// written (policy.Policy.Warnings); only in the answer to a publish.
	Warnings []ProblemError `json:"warnings,omitempty"`
}

func viewPolicy(pv *margen.PolicyVersion, withSource bool) policyView {
	v := policyView{Version: pv.Version, Active: pv.Active, CreatedBy: pv.CreatedBy, Note: pv.Note, CreatedAt: pv.CreatedAt}
	if withSource {
		v.Source = pv.Source
	}
	return v
}

var yamlTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}

// readPolicy reads, parses and checks a policy sent to be published or
// checked: it must validate, be in the organisation's currency and leave no
// active member without a role. It answers the problem itself on failure.
func (s *server) readPolicy(w http.ResponseWriter, r *http.Request, st *reqState) (*policy.Policy, []byte, bool) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !slices.Contains(yamlTypes, mt) {
		e := margen.Errorf(margen.EMEDIATYPE, "error.content_type")
		e.Field = "Content-Type"
		s.problem(w, r, e)
		return nil, nil, false
	}
	src, err := readBody(w, r, maxPolicyBody)
	if margen.IsCode(err, margen.ETOOLARGE) {
		err = margen.Errorf(margen.ETOOLARGE, "error.policy_limit_size", "max", policy.MaxPolicySize)
	}
	if err == nil {
		// The source is stored as text: valid UTF-8, no NUL.
		err = margen.CheckText("body", string(src), 0, margen.TextBlock)
	}
	if err != nil {
		s.problem(w, r, err)
		return nil, nil, false
	}
	pol, err := decision.CheckPolicy(r.Context(), s.store, st.org, src)
	if err != nil {
		s.problem(w, r, err)
		return nil, nil, false
	}
	return pol, src, true
}

// policyWarnings are a valid policy's warnings as the API shows them.
func policyWarnings(pol *policy.Policy) []ProblemError {
	var out []ProblemError
	for _, w := range pol.Warnings() {
		out = append(out, ProblemError{Line: w.Line, Column: w.Column, Path: w.Path, Message: w.Msg})
	}
	return out
}

// policyCheck is the answer of POST /api/v1/policies/check.
type policyCheck struct {
	OK       bool           `json:"ok"`
	Warnings []ProblemError `json:"warnings"`
}

// checkPolicy answers what publishing the policy would: the same problems,
// or ok with its warnings; it changes nothing.
func (s *server) checkPolicy(w http.ResponseWriter, r *http.Request) {
	pol, _, ok := s.readPolicy(w, r, state(r))
	if !ok {
		return
	}
	out := policyCheck{OK: true, Warnings: policyWarnings(pol)}
	if out.Warnings == nil {
		out.Warnings = []ProblemError{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) publishPolicy(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	pol, src, ok := s.readPolicy(w, r, st)
	if !ok {
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

	// The store numbers the version under the organisation's lock and
	// stores the answer with it, so a replay names what this request made.
	pv := &margen.PolicyVersion{OrgID: st.org.ID, Source: string(src), Active: true,
		CreatedBy: st.member.ID, Note: note, CreatedAt: s.clock.Now()}
	warnings := policyWarnings(pol)
	render := func(created *margen.PolicyVersion) ([]byte, error) {
		view := viewPolicy(created, false)
		view.Warnings = warnings
		return json.Marshal(view)
	}
	err := s.store.PublishPolicy(r.Context(), pv, idemWrite(ic, http.StatusCreated, render))
	var out []byte
	if err == nil {
		s.engine.Invalidate(st.org.ID)
		out, err = ic.sentOr(func() ([]byte, error) { return render(pv) })
	}
	s.respond(w, r, ic, err, http.StatusCreated, out)
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

// ledgerCheck is the answer of GET and POST /api/v1/ledger/check: the
// latest stored report of the check (run as a job, margen.JobLedgerCheck)
// and whether one is waiting or running.
type ledgerCheck struct {
	Running    bool                `json:"running"`
	ID         string              `json:"id,omitempty"`
	StartedAt  *time.Time          `json:"started_at"`
	CheckedAt  *time.Time          `json:"checked_at"` // null: never checked
	OK         bool                `json:"ok"`
	Ledger     margen.LedgerReport `json:"ledger"`
	Audit      auditCheck          `json:"audit"`
	Checkpoint *margen.Checkpoint  `json:"checkpoint,omitempty"`
}

type auditCheck struct {
	OK      bool  `json:"ok"`
	Checked int64 `json:"checked"`
	Broken  int64 `json:"broken"` // first broken seq, 0 when intact
	// From is the checkpoint the check started from (0: the whole trail).
	From int64 `json:"from"`
	// The rows the trail seals, checked against its commitments, and what
	// did not match (see margen.AuditReport).
	SealedFrom   int64                 `json:"sealed_from"`
	Rows         int                   `json:"rows"`
	ProblemCount int                   `json:"problem_count"`
	Problems     []margen.AuditProblem `json:"problems"`
}

// latestCheck renders the organisation's latest report.
func (s *server) latestCheck(ctx context.Context, orgID string) (ledgerCheck, error) {
	out := ledgerCheck{Ledger: margen.LedgerReport{Mismatches: []margen.LedgerMismatch{}},
		Audit: auditCheck{Problems: []margen.AuditProblem{}}}
	running, err := s.store.LedgerCheckQueued(ctx, orgID)
	if err != nil {
		return out, err
	}
	out.Running = running
	c, err := s.store.LatestLedgerCheck(ctx, orgID, false)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	a := c.Audit
	if c.Ledger.Mismatches != nil {
		out.Ledger = c.Ledger
	} else {
		out.Ledger.Accounts, out.Ledger.Entries, out.Ledger.MismatchCount = c.Ledger.Accounts, c.Ledger.Entries, c.Ledger.MismatchCount
	}
	if a.Problems == nil {
		a.Problems = []margen.AuditProblem{}
	}
	out.ID, out.StartedAt, out.CheckedAt, out.OK, out.Checkpoint = c.ID, &c.StartedAt, &c.FinishedAt, c.OK, c.Checkpoint
	out.Audit = auditCheck{OK: a.OK(), Checked: a.Entries, Broken: a.Broken, From: a.From, SealedFrom: a.SealedFrom,
		Rows: a.Rows, ProblemCount: a.ProblemCount, Problems: a.Problems}
	return out, nil
}

// checkLedger serves the latest report; the check itself runs as a job
// (POST), never inside a request: it streams every row of the
// organisation.
func (s *server) checkLedger(w http.ResponseWriter, r *http.Request) {
	out, err := s.latestCheck(r.Context(), state(r).org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// runLedgerCheck queues a check of the organisation, unless one is already
// waiting or running, and answers 202 with the latest report. Queuing
// twice is harmless, so it takes no Idempotency-Key. ?from=latest starts
// the audit check from the signed checkpoint of the latest clean report.
func (s *server) runLedgerCheck(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	var p margen.LedgerCheckJob
	switch from := r.URL.Query().Get("from"); from {
	case "":
	case "latest":
		p.FromLatest = true
	default:
		s.problem(w, r, margen.Invalid("from", "error.ledger_check_from"))
		return
	}
	if _, err := margen.QueueLedgerCheck(r.Context(), s.store, st.org.ID, p, s.clock.Now()); err != nil {
		s.problem(w, r, err)
		return
	}
	out, err := s.latestCheck(r.Context(), st.org.ID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, out)
}
