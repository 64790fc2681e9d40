package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
)

// The counter ("¿Puedo?"): a waiter asks, the same decision engine as
// POST /api/v1/decisions answers.

const (
	maxSearch        = 100
	searchResults    = 8
	streamHeartbeat  = 15 * time.Second
	orderTotalField  = "order_total"
	anonymousRefHead = "anon-"
)

// counterForm is what the waiter typed, echoed back when the form must be
// shown again.
type counterForm struct {
	Action, Amount, Reason, Customer, CustomerName, Total, Idem string
}

// actionOption is one action the waiter can pick.
type actionOption struct {
	ID, Label string
	Checked   bool
}

// counterData is the counter page.
type counterData struct {
	Latitude   []string
	Actions    []actionOption
	NeedsTotal bool // some grant of the member's reads context.order_total
	Form       counterForm
	Verdict    *verdict
}

// verdict is the answer shown under the form.
type verdict struct {
	Decision  *margen.Decision
	Message   string
	Budgets   []margen.BudgetView
	Approval  *margen.Approval
	Waited    time.Duration // how long the approval took
	Exception bool          // a refusal that may ask for an exception
	Approver  string        // the approver role's label
}

// newIdem is a fresh idempotency key for one rendering of the form: a
// double tap on "¿Puedo?" records one decision.
func newIdem() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *server) counter(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "counter.title", nil)
	d, err := s.counterData(r.Context(), p, counterForm{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = d
	if key := s.sessions.PopString(r.Context(), "notice"); key != "" {
		p.Notice = p.T(key)
	}
	s.render(w, r, http.StatusOK, "counter", "", p)
}

// counterData builds the page: the member's latitude in words and the
// policy's actions in the page's language.
func (s *server) counterData(ctx context.Context, p *page, f counterForm) (*counterData, error) {
	d := &counterData{Form: f}
	if d.Form.Idem == "" {
		d.Form.Idem = newIdem()
	}
	pol, _, err := s.engine.Policy(ctx, p.Org.ID)
	if decision.IsNoPolicy(err) {
		d.Latitude = []string{p.T("counter.latitude.no_policy")}
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	lines, granted, needsTotal, err := s.latitude(ctx, p, pol)
	if err != nil {
		return nil, err
	}
	d.Latitude, d.NeedsTotal = lines, needsTotal
	for _, a := range pol.Actions() {
		if !a.Monetary {
			continue // exceptions are asked for after a refusal
		}
		d.Actions = append(d.Actions, actionOption{ID: a.ID, Label: label(a.Label, p.Lang, a.ID)})
	}
	// The actions the member may take alone come first.
	slices.SortStableFunc(d.Actions, func(a, b actionOption) int {
		return boolRank(granted[b.ID]) - boolRank(granted[a.ID])
	})
	want := d.Form.Action
	if want == "" && len(d.Actions) > 0 {
		want = d.Actions[0].ID
	}
	for i := range d.Actions {
		d.Actions[i].Checked = d.Actions[i].ID == want
	}
	return d, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// label picks a policy label in lang, else Spanish, else the id.
func label(l map[string]string, lang, id string) string {
	if v := l[lang]; v != "" {
		return v
	}
	if v := l[i18n.Default]; v != "" {
		return v
	}
	return id
}

// latitude says in words what the member may do alone: per action the
// largest amount of the grant that applies first (as the engine picks
// them: nearest role, then file order), and what remains today, this week
// or this month of each of their own budgets those grants charge.
func (s *server) latitude(ctx context.Context, p *page, pol *policy.Policy) (lines []string, granted map[string]bool, needsTotal bool, err error) {
	m := p.Member
	granted = map[string]bool{}
	reach := pol.RolesReaching(m.Role)
	grants := pol.Grants()
	var budgets []string
	for _, a := range pol.Actions() {
		if !a.Monetary {
			continue
		}
		for _, role := range reach {
			i := slices.IndexFunc(grants, func(g policy.Grant) bool {
				return g.Role == role && (len(g.Teams) == 0 || slices.Contains(g.Teams, m.Team)) &&
					(slices.Contains(g.Actions, a.ID) || slices.Contains(g.Actions, "*"))
			})
			if i < 0 {
				continue
			}
			g := grants[i]
			granted[a.ID] = true
			line := p.T("counter.latitude.action", "action", label(a.Label, p.Lang, a.ID), "max", p.Money(g.MaxAmount))
			var conds []string
			for _, c := range g.Conditions {
				if l := c.Label[p.Lang]; l != "" {
					conds = append(conds, l)
				}
				if strings.Contains(c.When, "context."+orderTotalField) {
					needsTotal = true
				}
			}
			if len(conds) > 0 {
				line += " " + p.T("counter.latitude.if", "conditions", strings.Join(conds, "; "))
			}
			lines = append(lines, line)
			for _, b := range g.Budgets {
				if !slices.Contains(budgets, b) {
					budgets = append(budgets, b)
				}
			}
			break
		}
	}
	if len(lines) == 0 {
		return []string{p.T("counter.latitude.none")}, granted, false, nil
	}
	loc := p.Org.Location()
	now := s.clock.Now()
	for _, id := range budgets {
		b, ok := pol.Budget(id)
		if !ok || b.Scope != policy.ScopeMember {
			continue
		}
		period := policy.PeriodKey(b.Period, now, loc)
		accts, err := s.store.ListBudgets(ctx, p.Org.ID, margen.BudgetFilter{BudgetID: b.ID, Subject: m.ID, Period: period})
		if err != nil {
			return nil, nil, false, err
		}
		used := int64(0)
		for _, acc := range accts {
			used += acc.Used()
		}
		lines = append(lines, p.T("counter.latitude.remaining."+b.Period, "remaining", p.Money(max(b.Limit-used, 0))))
	}
	return lines, granted, needsTotal, nil
}

// customers answers the search as you type (an htmx fragment): the
// organisation's customers whose name or reference contains the text.
func (s *server) customers(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("customer_name"))
	p := s.newPage(r, "counter.title", nil)
	var found []margen.Customer
	if q != "" && len(q) <= maxSearch {
		var err error
		if found, err = s.store.SearchCustomers(r.Context(), p.Org.ID, q, searchResults); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	p.Data = map[string]any{"Query": q, "Customers": found}
	s.render(w, r, http.StatusOK, "counter", "customers", p)
}

// formValues reads the counter form.
func formValues(r *http.Request) counterForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return counterForm{Action: v("action"), Amount: v("amount"), Reason: v("reason"), Customer: v("customer"),
		CustomerName: v("customer_name"), Total: v("total"), Idem: v("idem")}
}

// customerInput is the customer of a request: one picked from the search
// (its reference), a new one by the name typed (its reference derived from
// the name), or nobody in particular (a reference of its own, so an
// unidentified customer never shares a customer budget with another).
func customerInput(f counterForm) decision.CustomerInput {
	switch {
	case f.Customer != "" && f.Customer != "none" && f.Customer != "new":
		return decision.CustomerInput{Ref: f.Customer}
	case f.Customer != "none" && f.CustomerName != "":
		return decision.CustomerInput{Ref: refFromName(f.CustomerName), Name: f.CustomerName}
	}
	return decision.CustomerInput{Ref: anonymousRefHead + strings.TrimPrefix(margen.NewID("x"), "x_")}
}

// refFromName makes a reference from a name: "Mesa 12" -> "mesa-12".
func refFromName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// decide asks the decision engine, exactly as POST /api/v1/decisions does.
// With htmx the verdict is answered as a fragment; without JavaScript the
// browser is sent to the decision's page (post, redirect, get).
func (s *server) decide(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	f := formValues(r)
	p := s.newPage(r, "counter.title", nil)
	amount, err := parseMoney(p.Lang, st.org.Currency, f.Amount)
	var ctxJSON json.RawMessage
	if err == nil && f.Total != "" {
		var total int64
		if total, err = parseMoney(p.Lang, st.org.Currency, f.Total); err == nil {
			ctxJSON, _ = json.Marshal(map[string]int64{orderTotalField: total})
		}
	}
	if err != nil {
		s.counterError(w, r, p, f, err)
		return
	}
	req := &decision.Request{Org: st.org, Member: st.member, Action: f.Action, Amount: amount,
		Customer: customerInput(f), Reason: f.Reason, Context: ctxJSON}
	key := ""
	if f.Idem != "" && len(f.Idem) <= 64 {
		// A double tap on "¿Puedo?" sends the form twice with one key: the
		// second finds the first's decision instead of recording another.
		key = "web-" + f.Idem
		if d, ok, err := s.replayed(r.Context(), st, key); err != nil || ok {
			s.decided(w, r, p, d, err)
			return
		}
		body := url.Values{"action": {f.Action}, "amount": {f.Amount}, "reason": {f.Reason}, "customer": {f.Customer},
			"customer_name": {f.CustomerName}, "total": {f.Total}}
		now := s.clock.Now()
		req.Idem = &margen.IdemWrite[*margen.Decision]{
			Record: margen.Idempotency{OrgID: st.org.ID, MemberID: st.member.ID, Key: key,
				RequestHash: hashForm(body), CreatedAt: now, ExpiresAt: now.Add(margen.DefaultIdempotencyTTL)},
			Respond: func(d *margen.Decision) ([]byte, error) { return json.Marshal(d) },
		}
	}
	res, err := s.engine.Decide(r.Context(), req)
	if margen.IsCode(err, margen.ECONFLICT) && key != "" {
		var d *margen.Decision
		var ok bool
		if d, ok, err = s.replayed(r.Context(), st, key); err == nil && !ok {
			err = margen.Errorf(margen.ECONFLICT, "error.idempotency_exists")
		}
		s.decided(w, r, p, d, err)
		return
	}
	if err != nil {
		s.counterError(w, r, p, f, err)
		return
	}
	s.decided(w, r, p, res.Decision, nil)
}

// hashForm fingerprints a form's fields.
func hashForm(v url.Values) string {
	sum := sha256.Sum256([]byte(v.Encode()))
	return hex.EncodeToString(sum[:])
}

// replayed returns the decision an earlier submission of the same form
// recorded under key, if any.
func (s *server) replayed(ctx context.Context, st *reqState, key string) (*margen.Decision, bool, error) {
	rec, err := s.store.Idempotency(ctx, st.org.ID, st.member.ID, key)
	if margen.IsCode(err, margen.ENOTFOUND) || err == nil && !rec.Live(s.clock.Now()) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var d margen.Decision
	if err := json.Unmarshal(rec.Response, &d); err != nil || d.ID == "" {
		return nil, false, fmt.Errorf("web: stored decision under %s: %v", key, err)
	}
	return &d, true, nil
}

// decided answers a decision: its fragment for htmx, else a redirect to
// its page (post, redirect, get).
func (s *server) decided(w http.ResponseWriter, r *http.Request, p *page, d *margen.Decision, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Header.Get("HX-Request") != "true" {
		http.Redirect(w, r, "/counter/decisions/"+d.ID, http.StatusSeeOther)
		return
	}
	v, err := s.verdict(r.Context(), p, d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = &counterData{Verdict: v}
	s.render(w, r, http.StatusOK, "counter", "verdict", p)
}

// counterError shows the form again with what is wrong, in words.
func (s *server) counterError(w http.ResponseWriter, r *http.Request, p *page, f counterForm, err error) {
	msg := p.message(err)
	if msg == "" || margen.ErrorCode(err) != margen.EINVALID {
		s.fail(w, r, err)
		return
	}
	p.Error = msg
	f.Idem = ""
	d, derr := s.counterData(r.Context(), p, f)
	if derr != nil {
		s.fail(w, r, derr)
		return
	}
	p.Data = d
	if r.Header.Get("HX-Request") == "true" {
		// The form stays as typed; the message goes where the verdict goes.
		p.Data = &counterData{}
		s.render(w, r, http.StatusOK, "counter", "verdict", p)
		return
	}
	s.render(w, r, http.StatusBadRequest, "counter", "", p)
}

// parseMoney reads an amount typed in major units ("25.000", "25000,50" in
// Spanish; "25,000.50" in English) into minor units of the currency.
func parseMoney(lang, cur, s string) (int64, error) {
	bad := margen.Invalid("amount", "counter.error.amount")
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "$"))
	if s == "" || len(s) > 24 {
		return 0, bad
	}
	group, dec := ".", ","
	if lang == "en" {
		group, dec = ",", "."
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, group, ""), " ", "")
	whole, frac, _ := strings.Cut(s, dec)
	scale := i18n.Scale(cur)
	if len(frac) > scale || whole == "" {
		return 0, bad
	}
	for len(frac) < scale {
		frac += "0"
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil || n < 0 || strings.ContainsAny(whole+frac, "+-") {
		return 0, bad
	}
	return n, nil
}

// verdict prepares a decision for display, with its approval request.
func (s *server) verdict(ctx context.Context, p *page, d *margen.Decision) (*verdict, error) {
	pol, _, err := s.engine.Policy(ctx, p.Org.ID)
	if err != nil && !decision.IsNoPolicy(err) {
		return nil, err
	}
	if err != nil {
		pol = nil
	}
	v := &verdict{Decision: d, Message: decision.Words(s.cat, pol, p.Lang, p.Org.Currency, d), Budgets: d.Budgets,
		Exception: decision.Next(d) != nil}
	if d.ApprovalID != "" {
		a, err := s.store.GetApproval(ctx, p.Org.ID, d.ApprovalID)
		if err != nil {
			return nil, err
		}
		s.withApproval(v, a, pol, p.Lang)
	}
	return v, nil
}

func (s *server) withApproval(v *verdict, a *margen.Approval, pol *policy.Policy, lang string) {
	v.Approval = a
	v.Approver = a.ApproverRole
	if pol != nil {
		for _, r := range pol.Roles() {
			if r.ID == a.ApproverRole {
				v.Approver = label(r.Label, lang, r.ID)
			}
		}
	}
	if a.DecidedAt != nil {
		v.Waited = a.DecidedAt.Sub(a.CreatedAt)
	}
}

// ownDecision reads a decision the member may see: their own, or any as a
// supervisor (margen.SeesAll, as GET /api/v1/decisions/{id}).
func (s *server) ownDecision(r *http.Request) (*margen.Decision, error) {
	st := current(r)
	d, err := s.store.GetDecision(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && !margen.SeesAll(st.member) && d.MemberID != st.member.ID {
		err = margen.NotFound("decision")
	}
	return d, err
}

// decisionPage is the counter with a verdict under it: where a form posted
// without JavaScript lands.
func (s *server) decisionPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.ownDecision(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := s.newPage(r, "counter.title", nil)
	cd, err := s.counterData(r.Context(), p, counterForm{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if cd.Verdict, err = s.verdict(r.Context(), p, d); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.ActID != "" {
		if act, err := s.store.GetAct(r.Context(), p.Org.ID, d.ActID); err == nil {
			p.Notice = reactedNotice(p, act)
		}
	}
	p.Data = cd
	s.render(w, r, http.StatusOK, "counter", "", p)
}

// approvalPage shows where a request stands (without JavaScript: reload
// it to see the answer).
func (s *server) approvalPage(w http.ResponseWriter, r *http.Request) {
	a, err := s.ownApproval(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/counter/decisions/"+a.DecisionID, http.StatusSeeOther)
}

// ownApproval reads a request the member made. The counter follows only
// one's own requests; deciding them is the inbox's.
func (s *server) ownApproval(r *http.Request) (*margen.Approval, error) {
	st := current(r)
	a, err := s.store.GetApproval(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && a.MemberID != st.member.ID {
		err = margen.NotFound("approval")
	}
	return a, err
}

// approvalEvents is the live answer to a waiting request (Server-Sent
// Events for htmx's SSE extension): an "answer" event carries the HTML
// that replaces "pidiendo a tu supervisora…" and, once the request is
// settled, a "done" event closes the stream. It follows the same event
// broker and the same visibility rule (approval.Service.Visible) as
// GET /api/v1/events.
func (s *server) approvalEvents(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	ctx := r.Context()
	a, err := s.ownApproval(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := a.ID
	rc, end, ok := s.openStream(w, r)
	if !ok {
		return
	}
	defer end()
	evs, unsubscribe := s.broker.Subscribe(st.org.ID, func(ev events.Event) bool {
		return ev.Data != nil && ev.Data.Route().ApprovalID == id && (ev.Type == margen.EventApprovalDecided || ev.Type == margen.EventApprovalEscalated) &&
			s.approvals.Visible(ctx, st.org, st.member, ev)
	})
	defer unsubscribe()

	p := s.newPage(r, "counter.title", nil)
	// send writes the request's state; it reports whether it is settled.
	send := func() (bool, error) {
		a, err := s.store.GetApproval(ctx, st.org.ID, id)
		if err != nil {
			return false, err
		}
		d, err := s.store.GetDecision(ctx, st.org.ID, a.DecisionID)
		if err != nil {
			return false, err
		}
		v, err := s.verdict(ctx, p, d)
		if err != nil {
			return false, err
		}
		p.Data = &counterData{Verdict: v}
		var buf bytes.Buffer
		if err := s.views.pages["counter"].ExecuteTemplate(&buf, "answer", p); err != nil {
			return false, err
		}
		settled := a.Status != margen.ApprovalPending
		writeSSE(w, "answer", buf.String())
		if settled {
			writeSSE(w, "done", "")
		}
		return settled, rc.Flush()
	}
	// The request may have been answered before the page connected.
	if a.Status != margen.ApprovalPending {
		if _, err := send(); err != nil {
			s.log.Warn("web: approval stream", "approval", id, "err", err)
		}
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case <-heartbeat.C:
			if !s.ping(ctx, st, w, rc) {
				return
			}
		case _, ok := <-evs:
			if !ok {
				return
			}
			settled, err := send()
			if err != nil {
				s.log.Warn("web: approval stream", "approval", id, "err", err)
				return
			}
			if settled {
				return
			}
		}
	}
}

// writeSSE writes one event; each line of data gets its own data: field.
// openStream starts a Server-Sent Events answer: it counts the stream
// against the member's and the organisation's limits (the same ones as
// GET /api/v1/events: a 429 page beyond them), writes the headers and the
// reconnection delay, and returns the controller to flush with and the
// function that ends the count. ok is false when the request is answered.
func (s *server) openStream(w http.ResponseWriter, r *http.Request) (rc *http.ResponseController, end func(), ok bool) {
	st := current(r)
	end, err := s.streams.Open(st.org.ID, st.member.ID)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	rc = http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil {
		end()
		return nil, nil, false
	}
	return rc, end, true
}

// ping is a stream's heartbeat. The stream outlives the request that
// opened it, so a member deactivated or changed since is cut off: ping
// reports whether the stream may go on.
func (s *server) ping(ctx context.Context, st *reqState, w http.ResponseWriter, rc *http.ResponseController) bool {
	m, err := s.store.MemberByID(ctx, st.org.ID, st.member.ID)
	if err != nil || !m.Active || margen.MemberStamp(m) != margen.MemberStamp(st.member) {
		return false
	}
	if _, err := w.Write([]byte(": ping\n\n")); err != nil {
		return false
	}
	return rc.Flush() == nil
}

func writeSSE(w http.ResponseWriter, event, data string) {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteByte('\n')
	for _, line := range strings.Split(data, "\n") {
		b.WriteString("data: ")
		b.WriteString(strings.TrimRight(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	w.Write([]byte(b.String()))
}

// exception asks for an exception after a refusal, through the same
// approval service as POST /api/v1/exceptions.
func (s *server) exception(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	d, err := s.ownDecision(r)
	if err == nil && (d.MemberID != st.member.ID || decision.Next(d) == nil) {
		err = margen.Errorf(margen.EFORBIDDEN, "error.forbidden")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := s.newPage(r, "counter.title", nil)
	x := approval.ExceptionRequest{Reason: d.Reason}
	if cus, err := s.store.CustomerByID(r.Context(), st.org.ID, d.CustomerID); err == nil {
		x.Customer = decision.CustomerInput{Ref: cus.Ref}
	} else if !margen.IsCode(err, margen.ENOTFOUND) {
		s.fail(w, r, err)
		return
	}
	actionLabel := d.Action
	if pol, _, err := s.engine.Policy(r.Context(), st.org.ID); err == nil {
		if a, ok := pol.Action(d.Action); ok {
			actionLabel = label(a.Label, p.Lang, a.ID)
		}
	}
	x.Description = p.T("counter.exception.description", "action", actionLabel, "amount", p.Money(d.Amount), "reason", d.Reason)
	// One exception per refused decision: a second tap finds the first.
	key := "web-exception-" + d.ID
	rec, err := s.store.Idempotency(r.Context(), st.org.ID, st.member.ID, key)
	var xd *margen.Decision
	switch {
	case err == nil && rec.Live(s.clock.Now()):
		var res approval.ExceptionResult
		if err = json.Unmarshal(rec.Response, &res); err == nil && res.Decision == nil {
			err = fmt.Errorf("web: stored exception under %s has no decision", key)
		}
		xd = res.Decision
	case err == nil || margen.IsCode(err, margen.ENOTFOUND):
		now := s.clock.Now()
		idem := &margen.IdemWrite[approval.ExceptionResult]{
			Record: margen.Idempotency{OrgID: st.org.ID, MemberID: st.member.ID, Key: key, RequestHash: d.ID,
				CreatedAt: now, ExpiresAt: now.Add(margen.DefaultIdempotencyTTL)},
			Respond: func(x approval.ExceptionResult) ([]byte, error) { return json.Marshal(x) },
		}
		xd, _, err = s.approvals.RequestException(r.Context(), st.org, st.member, x, idem)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Header.Get("HX-Request") != "true" {
		http.Redirect(w, r, "/counter/decisions/"+xd.ID, http.StatusSeeOther)
		return
	}
	v, err := s.verdict(r.Context(), p, xd)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = &counterData{Verdict: v}
	s.render(w, r, http.StatusOK, "counter", "verdict", p)
}

var sentiments = []string{margen.SentimentPositive, margen.SentimentNeutral, margen.SentimentNegative}

// reaction records, in one tap, how the customer took an act.
func (s *server) reaction(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	sentiment := r.PostFormValue("sentiment")
	if !slices.Contains(sentiments, sentiment) {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	act, err := s.store.GetAct(r.Context(), st.org.ID, r.PathValue("id"))
	if err == nil && !margen.SeesAll(st.member) && act.MemberID != st.member.ID {
		err = margen.NotFound("act")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rea := &margen.Reaction{ID: margen.NewID("rea"), OrgID: st.org.ID, ActID: act.ID, Source: margen.SourceEmployee,
		Sentiment: sentiment, MemberID: st.member.ID, CreatedAt: s.clock.Now()}
	err = s.store.RecordReaction(r.Context(), rea, nil)
	if err != nil && !margen.IsCode(err, margen.ECONFLICT) { // a second tap: the first one counts
		s.fail(w, r, err)
		return
	}
	p := s.newPage(r, "counter.title", nil)
	if r.Header.Get("HX-Request") != "true" {
		http.Redirect(w, r, "/counter/decisions/"+act.DecisionID, http.StatusSeeOther)
		return
	}
	if act, err = s.store.GetAct(r.Context(), st.org.ID, act.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	p.Notice = reactedNotice(p, act)
	s.render(w, r, http.StatusOK, "counter", "notice", p)
}

// reactedNotice confirms the employee's recorded reaction, or "".
func reactedNotice(p *page, act *margen.Act) string {
	for _, x := range act.Reactions {
		if x.Source == margen.SourceEmployee {
			return p.T("counter.reaction.recorded." + x.Sentiment)
		}
	}
	return ""
}

var leftValues = []string{margen.LeftAccepted, margen.LeftNeutral, margen.LeftUnhappy, margen.LeftLost}

// refusal records "tuve que decir que no" in two taps: the button opens
// the choices, a choice (how the customer left) records it, with what the
// form holds (the action, amount, reason and customer, if any).
func (s *server) refusal(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	f := formValues(r)
	left := r.PostFormValue("left")
	if !slices.Contains(leftValues, left) {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	p := s.newPage(r, "counter.title", nil)
	amount, _ := parseMoney(p.Lang, st.org.Currency, f.Amount) // an amount is optional here
	wanted := f.Reason
	actionID := ""
	if pol, _, err := s.engine.Policy(r.Context(), st.org.ID); err == nil {
		if a, ok := pol.Action(f.Action); ok {
			actionID = a.ID
			if wanted == "" {
				wanted = label(a.Label, p.Lang, a.ID)
			}
		}
	} else if !decision.IsNoPolicy(err) {
		s.fail(w, r, err)
		return
	}
	if wanted == "" {
		wanted = p.T("counter.refusal.unspecified")
	}
	ref := &margen.Refusal{ID: margen.NewID("ref"), OrgID: st.org.ID, MemberID: st.member.ID, Action: actionID, Amount: amount,
		Wanted: wanted, ReasonKind: margen.RefusalOther, Left: left, CreatedAt: s.clock.Now()}
	var cus *margen.Customer
	if f.Customer != "" && f.Customer != "none" || f.CustomerName != "" {
		in := customerInput(f)
		ref.CustomerID = margen.CustomerID(st.org.ID, in.Ref)
		cus = &margen.Customer{ID: ref.CustomerID, OrgID: st.org.ID, Ref: in.Ref, Name: in.Name, Tags: []string{}, CreatedAt: ref.CreatedAt}
	}
	if err := s.store.RecordRefusal(r.Context(), ref, cus, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Header.Get("HX-Request") != "true" {
		s.sessions.Put(r.Context(), "notice", "counter.refusal.recorded")
		http.Redirect(w, r, "/counter", http.StatusSeeOther)
		return
	}
	p.Notice = p.T("counter.refusal.recorded")
	s.render(w, r, http.StatusOK, "counter", "notice", p)
}
