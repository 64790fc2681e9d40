package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/policy"
	"golang.org/x/sync/errgroup"
)

// The supervisor's inbox: the requests they can decide now (the same list
// as GET /api/v1/approvals/pending, approval.Service.Pending), arriving
// live over the event broker with the same visibility rule as
// GET /api/v1/events (approval.Service.Sees); the answer through
// approval.Service.Answer, as POST /api/v1/approvals/{id}/approve|reject;
// and the team's recent acts and refusals with the store's list methods,
// scoped as /api/v1/acts and /api/v1/refusals scope them (margen.SeesAll).

const (
	inboxRecentActs = 5            // a customer's recent acts shown with a request
	inboxFirst      = 20           // pending requests on the first screen, oldest due first
	inboxAll        = 100          // pending requests shown at most ("more")
	inboxActivity   = 20           // rows of the team's activity a screen shows ("older": the next ones)
	maxComment      = 1000         // as the approval service bounds it
	dateLayout      = "2006-01-02" // <input type="date">
)

// inboxAccess is the least access level with an inbox: the route table
// and the navigation both read it.
const inboxAccess = margen.AccessSupervisor

// keyInboxNotice is the session key of the confirmation shown after a
// redirect.
const keyInboxNotice = "inbox_notice"

// InboxAllowed reports whether the page's member may open the inbox.
func (p *page) InboxAllowed() bool {
	return p.Member != nil && margen.AccessAtLeast(p.Member, inboxAccess)
}

// inboxSLATick is how often an open inbox's time left is rewritten (a
// variable only so that a test can shorten it).
var inboxSLATick atomic.Int64

func init() { inboxSLATick.Store(int64(30 * time.Second)) }

// Outcomes the activity can be narrowed to.
const (
	outcomeAct     = "act"
	outcomeFlagged = "flagged"
	outcomeRefusal = "refusal"
)

var outcomes = []string{outcomeAct, outcomeFlagged, outcomeRefusal}

// inboxItem is one pending request with what is needed to decide it. Its
// words are written here, once, rather than by the template (which calls
// each method by reflection): the owner's inbox lists every pending request.
type inboxItem struct {
	Approval   *margen.Approval
	Title      string // who asks for how much
	Action     string // the action's label, or an exception's description
	Reason     string // or "no reason given"
	Customer   string // or "no identified customer"
	RecentActs []string
	Budgets    []string // what the requester's budgets have left now
	Escalated  bool
	DueText    string // "quedan 7 min", "vencida"
	DueAt      string // "(due at ...)", in the org's zone
	Error      string // the answer just refused, in words
	Comment    string // the comment typed, kept when the answer was refused
}

// inboxTexts are the words every request of the list shares, translated
// once per page.
type inboxTexts struct {
	Escalated, Ratification, Exception                string
	Action, Reason, Customer, Budgets, NoBudgets, Due string
	Comment, Approve, Reject                          string
}

func newInboxTexts(p *page) *inboxTexts {
	return &inboxTexts{Escalated: p.T("inbox.tag.escalated"), Ratification: p.T("inbox.tag.ratification"),
		Exception: p.T("inbox.tag.exception"), Action: p.T("inbox.request.action"), Reason: p.T("inbox.request.reason"),
		Customer: p.T("inbox.request.customer"), Budgets: p.T("inbox.request.budgets"), NoBudgets: p.T("inbox.request.no_budgets"),
		Due: p.T("inbox.request.due"), Comment: p.T("inbox.comment"), Approve: p.T("inbox.approve"), Reject: p.T("inbox.reject")}
}

// actRow is one act or refusal of the activity list, in words.
type actRow struct {
	ID       string // the act's id (its page shows both reactions)
	Kind     string // "act" or "refusal"
	At       string
	Member   string
	Action   string
	Amount   string // "" when none
	Reason   string
	Customer string
	Outcome  string // the act's link text, or the refusal and how the customer left
	Details  string // after the act's link: " · flagged · positive ..."
}

// inboxFilter is the activity's filter, as typed, and where its page
// starts (Before: the older rows' link, "" for the newest).
type inboxFilter struct {
	Member, Action, Outcome, Since, Until string
	Before                                string
	Errors                                map[string]string

	since, until time.Time // read: [since, until), zero when open
	before       margen.ActivityCursor
}

// query is the filter as the activity's links keep it (the cursor apart).
func (f *inboxFilter) query() url.Values {
	q := url.Values{}
	for _, kv := range [][2]string{{"member", f.Member}, {"action", f.Action}, {"outcome", f.Outcome}, {"since", f.Since}, {"until", f.Until}} {
		if kv[1] != "" {
			q.Set(kv[0], kv[1])
		}
	}
	return q
}

type option struct{ ID, Label string }

// filterOption is a choice of the activity's filter, chosen or not: the
// template compares no value per option (the filter lists every member
// and action).
type filterOption struct {
	ID, Label string
	Selected  bool
}

// inboxData is the inbox page.
type inboxData struct {
	Text     *inboxTexts
	Pending  []inboxItem
	Total    int       // pending requests the member can decide, shown or not
	All      bool      // every pending request asked for ("more"), not the first screen
	More     string    // the link to them all, when some are not shown
	Cases    []caseRow // open follow-up cases the member may close
	Activity []actRow
	Older    string // the link to the activity's next rows, when there are more
	Newest   string // the link back to its newest rows, on a later screen
	Filter   inboxFilter
	Members  []filterOption
	Actions  []filterOption
	Outcomes []filterOption
}

// inboxLookup resolves ids to names for one rendering.
type inboxLookup struct {
	members map[string]*margen.Member
	pol     *policy.Policy
}

// lookupOnce is lookup read once, by whichever section asks first.
func (s *server) lookupOnce(ctx context.Context, orgID string) func() (*inboxLookup, error) {
	return sync.OnceValues(func() (*inboxLookup, error) { return s.lookup(ctx, orgID) })
}

func (s *server) lookup(ctx context.Context, orgID string) (*inboxLookup, error) {
	ms, err := s.store.ListMembers(ctx, orgID)
	if err != nil {
		return nil, err
	}
	l := &inboxLookup{members: map[string]*margen.Member{}}
	for i := range ms {
		l.members[ms[i].ID] = &ms[i]
	}
	pol, _, err := s.engine.Policy(ctx, orgID)
	if err != nil && !decision.IsNoPolicy(err) {
		return nil, err
	}
	if err == nil {
		l.pol = pol
	}
	return l, nil
}

func (l *inboxLookup) member(id string) string {
	if m := l.members[id]; m != nil {
		if m.Name != "" {
			return m.Name
		}
		return m.Login
	}
	return id
}

func (l *inboxLookup) action(id, lang string) string {
	if l.pol != nil {
		if a, ok := l.pol.Action(id); ok {
			return label(a.Label, lang, a.ID)
		}
	}
	return id
}

// displayName is how a page names a customer: by name, else by reference,
// not at all when unidentified, and as "erased customer" once erased.
func displayName(p *page, c *margen.Customer) string {
	switch {
	case c == nil:
		return ""
	case c.Erased():
		return p.T("privacy.erased_customer")
	case strings.HasPrefix(c.Ref, anonymousRefHead) && c.Name == "":
		return "" // an unidentified customer
	case c.Name != "":
		return c.Name
	}
	return c.Ref
}

// pending builds the requests the member can decide now, oldest due first:
// the list (all of it, to count it), then for the ones shown (the first
// screen's, or up to inboxAll) their customers, their recent acts and the
// decisions with their budgets, read at the same time (on PostgreSQL each
// is a round trip). total counts every request the list holds.
//
// The lookup (lk) is read at the same time as the list: the page's other
// sections share it.
func (s *server) pending(ctx context.Context, p *page, lk func() (*inboxLookup, error), all bool) (items []inboxItem, total int, err error) {
	var list []margen.Approval
	g0, gctx0 := errgroup.WithContext(ctx)
	g0.Go(func() (err error) {
		list, err = s.approvals.Pending(gctx0, p.Org, p.Member, margen.Page{Limit: approval.PendingMax})
		return err
	})
	g0.Go(func() error {
		_, err := lk()
		return err
	})
	if err := g0.Wait(); err != nil || len(list) == 0 {
		return nil, 0, err
	}
	l, _ := lk()
	total = len(list)
	shown := inboxFirst
	if all {
		shown = inboxAll
	}
	list = list[:min(total, shown)]
	ids := make([]string, 0, len(list))
	decIDs := make([]string, 0, len(list))
	for i := range list {
		if list[i].CustomerID != "" {
			ids = append(ids, list[i].CustomerID)
		}
		decIDs = append(decIDs, list[i].DecisionID)
	}
	var (
		customers map[string]*margen.Customer
		recent    map[string][]margen.Act
		decs      map[string]*margen.Decision
		accounts  map[margen.BudgetKey]margen.BudgetAccount
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		customers, err = s.store.CustomersByID(gctx, p.Org.ID, ids)
		return err
	})
	g.Go(func() (err error) {
		recent, err = s.store.RecentActsByCustomer(gctx, p.Org.ID, ids, inboxRecentActs)
		return err
	})
	g.Go(func() (err error) {
		if decs, err = s.store.DecisionsByID(gctx, p.Org.ID, decIDs); err != nil {
			return err
		}
		var keys []margen.BudgetKey
		for _, d := range decs {
			for _, b := range d.Budgets {
				keys = append(keys, margen.BudgetKey{BudgetID: b.Budget, Subject: b.Subject, Period: b.Period})
			}
		}
		accounts, err = s.store.BudgetAccounts(gctx, p.Org.ID, keys)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	now := s.clock.Now()
	items = make([]inboxItem, 0, len(list))
	for i := range list {
		a := &list[i]
		it := inboxItem{Approval: a, Title: p.T("inbox.request.title", "member", l.member(a.MemberID), "amount", p.Money(a.Amount)),
			Action: l.action(a.Action, p.Lang), Escalated: a.Level > 0, DueText: dueText(p, a.DueAt, now),
			DueAt: p.T("inbox.request.due_at", "at", p.Time(a.DueAt))}
		if a.Kind == margen.ApprovalKindException {
			it.Action = a.Description
		}
		d := decs[a.DecisionID]
		if d == nil {
			return nil, 0, margen.NotFound("decision")
		}
		if it.Reason = d.Reason; it.Reason == "" {
			it.Reason = p.T("inbox.request.no_reason")
		}
		if it.Customer = displayName(p, customers[a.CustomerID]); it.Customer == "" {
			it.Customer = p.T("inbox.request.no_customer")
		}
		if a.CustomerID != "" {
			acts := recent[a.CustomerID]
			for j := range acts {
				x := &acts[j]
				it.RecentActs = append(it.RecentActs, p.T("inbox.request.recent_act", "when", p.Time(x.CreatedAt),
					"member", l.member(x.MemberID), "action", l.action(x.Action, p.Lang), "amount", p.Money(x.Amount)))
			}
		}
		for _, b := range d.Budgets {
			accts := []margen.BudgetAccount{}
			if b.Budget == "" || b.Subject == "" || b.Period == "" {
				// Not one account's key: list what it matches, as a filter.
				if accts, err = s.store.ListBudgets(ctx, p.Org.ID, margen.BudgetFilter{BudgetID: b.Budget, Subject: b.Subject, Period: b.Period}); err != nil {
					return nil, 0, err
				}
			} else if acc, ok := accounts[margen.BudgetKey{BudgetID: b.Budget, Subject: b.Subject, Period: b.Period}]; ok {
				accts = append(accts, acc)
			}
			for _, acc := range accts {
				it.Budgets = append(it.Budgets, p.T("counter.budget", "budget", p.Budget(acc.BudgetID),
					"remaining", p.Money(max(acc.Limit-acc.Used(), 0)), "limit", p.Money(acc.Limit)))
			}
		}
		items = append(items, it)
	}
	return items, total, nil
}

// dueText says how long is left to answer, in words.
func dueText(p *page, due, now time.Time) string {
	left := due.Sub(now)
	if left <= 0 {
		return p.T("inbox.sla.overdue")
	}
	if left < time.Minute {
		return p.T("inbox.sla.seconds", "n", int64(left.Round(time.Second)/time.Second))
	}
	mins := int64((left + time.Minute - 1) / time.Minute)
	if mins < 60 {
		return p.T("inbox.sla.minutes", "n", mins)
	}
	return p.T("inbox.sla.hours", "h", mins/60, "m", mins%60)
}

func actRowOf(p *page, l *inboxLookup, a *margen.Act, customer string) actRow {
	r := actRow{ID: a.ID, Kind: outcomeAct, At: p.Time(a.CreatedAt), Member: l.member(a.MemberID), Action: l.action(a.Action, p.Lang),
		Amount: amountText(p, a.Amount), Reason: a.Reason, Customer: customer, Outcome: p.T("inbox.outcome.act")}
	var b strings.Builder
	if a.Flagged {
		b.WriteString(" · " + p.T("inbox.outcome.flagged"))
	}
	for _, x := range a.Reactions {
		b.WriteString(" · " + p.T("counter.reaction."+x.Sentiment))
	}
	r.Details = b.String()
	return r
}

// IsRefusal tells a refusal's row from an act's.
func (r actRow) IsRefusal() bool { return r.Kind == outcomeRefusal }

func refusalRowOf(p *page, l *inboxLookup, x *margen.Refusal, customer string) actRow {
	r := actRow{Kind: outcomeRefusal, At: p.Time(x.CreatedAt), Member: l.member(x.MemberID), Action: l.action(x.Action, p.Lang),
		Amount: amountText(p, x.Amount), Reason: x.Wanted, Customer: customer, Outcome: p.T("inbox.outcome.refusal")}
	if x.Left != "" {
		r.Outcome += ": " + p.T("counter.refusal.left."+x.Left)
	}
	return r
}

// amountText is an amount as money, or nothing when there is none.
func amountText(p *page, minor int64) string {
	if minor == 0 {
		return ""
	}
	return p.Money(minor)
}

// readFilter reads and bounds the activity's filter and its cursor;
// problems are put beside their field (the cursor's beside the filter).
func readFilter(p *page, l *inboxLookup, q url.Values) (f inboxFilter) {
	f = inboxFilter{Member: q.Get("member"), Action: q.Get("action"), Outcome: q.Get("outcome"),
		Since: q.Get("since"), Until: q.Get("until"), Before: q.Get("before"), Errors: map[string]string{}}
	if f.Before != "" {
		var ok bool
		if f.before, ok = parseActivityCursor(f.Before); !ok {
			f.Errors["before"] = p.T("inbox4.filter.error.before")
			f.Before = ""
		}
	}
	if f.Member != "" && l.members[f.Member] == nil {
		f.Errors["member"] = p.T("inbox.filter.error.member")
	}
	if f.Action != "" && (len(f.Action) > 64 || l.pol == nil || !hasAction(l.pol, f.Action)) {
		f.Errors["action"] = p.T("inbox.filter.error.action")
	}
	if f.Outcome != "" && !slices.Contains(outcomes, f.Outcome) {
		f.Errors["outcome"] = p.T("inbox.filter.error.outcome")
	}
	loc, err := time.LoadLocation(p.Org.Timezone)
	if err != nil {
		loc = time.UTC
	}
	day := func(field, v string) time.Time {
		if v == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation(dateLayout, v, loc)
		if len(v) != len(dateLayout) || err != nil {
			f.Errors[field] = p.T("inbox.filter.error.date")
			return time.Time{}
		}
		return t
	}
	f.since, f.until = day("since", f.Since), day("until", f.Until)
	if !f.until.IsZero() {
		f.until = f.until.AddDate(0, 0, 1) // the whole day
	}
	if !f.since.IsZero() && !f.until.IsZero() && !f.since.Before(f.until) {
		f.Errors["until"] = p.T("inbox.filter.error.range")
	}
	return f
}

func hasAction(pol *policy.Policy, id string) bool {
	_, ok := pol.Action(id)
	return ok
}

// activity lists the team's acts (with their reactions) and refusals,
// newest first, narrowed by the filter, from the cursor (Before) on: a
// screen of rows, and the cursor of the next screen ("" when none is
// older). The scope is the JSON API's: a member who does not see
// everything sees only their own.
func (s *server) activity(ctx context.Context, p *page, l *inboxLookup, f *inboxFilter) ([]actRow, string, error) {
	af := margen.ActivityFilter{MemberID: f.Member, Action: f.Action, Since: f.since, Until: f.until, Before: f.before,
		Limit: inboxActivity + 1}
	if !margen.SeesAll(p.Member) {
		af.MemberID = p.Member.ID
	}
	switch f.Outcome {
	case outcomeAct:
		af.Kind = margen.ActivityAct
	case outcomeFlagged:
		af.Kind, af.Flagged = margen.ActivityAct, true
	case outcomeRefusal:
		af.Kind = margen.ActivityRefusal
	}
	items, err := s.store.Activity(ctx, p.Org.ID, af)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(items) > inboxActivity {
		items = items[:inboxActivity]
		next = activityCursor(items[inboxActivity-1].Cursor())
	}
	rows := make([]actRow, 0, len(items))
	for _, x := range items {
		if x.Act != nil {
			rows = append(rows, actRowOf(p, l, x.Act, displayName(p, x.Customer)))
		} else {
			rows = append(rows, refusalRowOf(p, l, x.Refusal, displayName(p, x.Customer)))
		}
	}
	return rows, next, nil
}

// activityLink is the inbox at its activity, with the query q.
func activityLink(q url.Values) string {
	if len(q) == 0 {
		return "/inbox#activity-heading"
	}
	return "/inbox?" + q.Encode() + "#activity-heading"
}

// activityCursor is a row's place in the activity as the older rows' link
// carries it: its time in microseconds since 1970, a dot, its id.
func activityCursor(c margen.ActivityCursor) string {
	return strconv.FormatInt(c.At.UnixMicro(), 10) + "." + c.ID
}

// maxCursorID bounds the id of a cursor (ids are "act_" or "ref_" and 32
// hexadecimal digits; imported ones are kept as they came).
const maxCursorID = 80

// parseActivityCursor reads a cursor activityCursor wrote; false for
// anything else. Its time has at most 16 digits (until the year 2286), its
// id only letters, digits, "_" and "-".
func parseActivityCursor(v string) (margen.ActivityCursor, bool) {
	us, id, ok := strings.Cut(v, ".")
	if !ok || len(us) == 0 || len(us) > 16 || len(id) == 0 || len(id) > maxCursorID {
		return margen.ActivityCursor{}, false
	}
	for _, c := range us {
		if c < '0' || c > '9' {
			return margen.ActivityCursor{}, false
		}
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return margen.ActivityCursor{}, false
		}
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return margen.ActivityCursor{}, false
	}
	return margen.ActivityCursor{At: time.UnixMicro(n).UTC(), ID: id}, true
}

// inboxData builds the whole page: its three sections (the pending
// requests, the open cases, the activity) are read at the same time.
func (s *server) inboxData(r *http.Request, p *page) (*inboxData, int, error) {
	ctx := r.Context()
	d := &inboxData{Text: newInboxTexts(p)}
	d.setAll(r)
	lk := s.lookupOnce(ctx, p.Org.ID)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		d.Pending, d.Total, err = s.pending(gctx, p, lk, d.All)
		return err
	})
	l, err := lk()
	if err != nil {
		_ = g.Wait()
		return nil, 0, err
	}
	d.Filter = readFilter(p, l, r.URL.Query())
	f := &d.Filter
	names := make(map[string]string, len(l.members))
	for id, m := range l.members {
		names[id] = m.Name
	}
	g.Go(func() (err error) {
		d.Cases, err = s.caseRowsNamed(gctx, p, margen.CaseFilter{Status: margen.CaseOpen, Page: margen.Page{Limit: inboxCases}},
			true, "inbox", names)
		return err
	})
	// The links keep the filter (and the pending list's "all").
	q := f.query()
	if d.All {
		q.Set("pending", "all")
	}
	status := http.StatusOK
	if len(f.Errors) > 0 {
		status = http.StatusBadRequest
		if _, bad := f.Errors["before"]; bad {
			// The message says to go back to the newest rows: link them.
			d.Newest = activityLink(q)
		}
	} else {
		g.Go(func() (err error) {
			var next string
			if d.Activity, next, err = s.activity(gctx, p, l, f); err != nil {
				return err
			}
			if f.Before != "" {
				d.Newest = activityLink(q)
			}
			if next != "" {
				q.Set("before", next)
				d.Older = activityLink(q)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	d.setMore(r)
	for _, m := range l.members {
		d.Members = append(d.Members, filterOption{m.ID, l.member(m.ID), m.ID == f.Member})
	}
	slices.SortFunc(d.Members, func(a, b filterOption) int { return strings.Compare(a.Label, b.Label) })
	if l.pol != nil {
		for _, a := range l.pol.Actions() {
			d.Actions = append(d.Actions, filterOption{a.ID, label(a.Label, p.Lang, a.ID), a.ID == f.Action})
		}
	}
	for _, o := range outcomes {
		d.Outcomes = append(d.Outcomes, filterOption{o, p.T("inbox.outcome." + o), o == f.Outcome})
	}
	return d, status, nil
}

// setAll reads whether every pending request is asked for (the "more"
// link, kept by the answer's form and the live list's connection).
func (d *inboxData) setAll(r *http.Request) { d.All = r.FormValue("pending") == "all" }

// setMore links to every pending request when some are not shown.
func (d *inboxData) setMore(r *http.Request) {
	if d.All || d.Total <= len(d.Pending) {
		return
	}
	q := r.URL.Query()
	if r.Method != http.MethodGet {
		q = url.Values{}
	}
	q.Set("pending", "all")
	d.More = "/inbox?" + q.Encode() + "#pending-heading"
}

// pendingOnly is the inbox with only its pending requests (the answer's
// fragment, the live list).
func (s *server) pendingOnly(r *http.Request, p *page) (*inboxData, error) {
	d := &inboxData{Text: newInboxTexts(p)}
	d.setAll(r)
	var err error
	if d.Pending, d.Total, err = s.pending(r.Context(), p, s.lookupOnce(r.Context(), p.Org.ID), d.All); err != nil {
		return nil, err
	}
	d.setMore(r)
	return d, nil
}

func (s *server) inbox(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "inbox.title", nil)
	d, status, err := s.inboxData(r, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Notice = s.sessions.PopString(r.Context(), keyInboxNotice)
	p.Data = d
	s.render(w, r, status, "inbox", "", p)
}

// markError puts a refused answer's message beside its request; false when
// the request is no longer in the list.
func markError(items []inboxItem, id, msg, comment string) bool {
	for i := range items {
		if items[i].Approval.ID == id {
			items[i].Error, items[i].Comment = msg, comment
			return true
		}
	}
	return false
}

// answer approves or rejects a request through the approval service, as
// POST /api/v1/approvals/{id}/approve|reject. Without JavaScript the
// browser goes back to the inbox (post, redirect, get); with htmx the
// pending list is answered as a fragment.
func (s *server) answer(w http.ResponseWriter, r *http.Request) {
	// Not s.form: its per-field bound is the comment's own, and a comment
	// too long is told beside the field (margen.CheckText below).
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusRequestEntityTooLarge, "error.page.bad_form")
		return
	}
	st := current(r)
	id := r.PathValue("id")
	comment := strings.TrimSpace(r.PostFormValue("comment"))
	verb := r.PostFormValue("answer")
	if verb != "approve" && verb != "reject" {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	p := s.newPage(r, "inbox.title", nil)
	err := margen.CheckText("comment", comment, maxComment, true)
	var a *margen.Approval
	if err == nil {
		a, err = s.approvals.Answer(r.Context(), st.org, st.member, id, verb == "approve", comment, nil)
	}
	status, msg := http.StatusOK, ""
	switch {
	case err == nil:
		p.Notice = p.T("inbox.answered."+a.Status, "member", s.requesterName(r.Context(), st.org.ID, a.MemberID))
	case margen.IsCode(err, margen.ECONFLICT):
		status, msg = http.StatusConflict, s.answeredBy(r.Context(), p, id)
	case margen.IsCode(err, margen.ENOTFOUND):
		s.fail(w, r, err)
		return
	default:
		if msg = p.message(err); msg == "" {
			s.fail(w, r, err)
			return
		}
		status = http.StatusUnprocessableEntity
		if margen.IsCode(err, margen.EFORBIDDEN) {
			status = http.StatusForbidden
		}
	}
	if r.Header.Get("HX-Request") != "true" {
		if msg == "" {
			s.sessions.Put(r.Context(), keyInboxNotice, p.Notice)
			to := "/inbox"
			if r.PostFormValue("pending") == "all" {
				to += "?pending=all"
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		// Refused: the inbox again, the message beside the request.
		d, _, err := s.inboxData(r, p)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !markError(d.Pending, id, msg, comment) {
			p.Error = msg
		}
		p.Data = d
		s.render(w, r, status, "inbox", "", p)
		return
	}
	d, err := s.pendingOnly(r, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if msg != "" && !markError(d.Pending, id, msg, comment) {
		p.Error = msg
	}
	p.Data = d
	// htmx swaps only 2xx answers: the refusal is in the fragment. The
	// confirmation goes out of band to the status line above the list,
	// which the live list does not overwrite.
	s.render(w, r, http.StatusOK, "inbox", "answered", p)
}

func (s *server) requesterName(ctx context.Context, orgID, id string) string {
	m, err := s.store.MemberByID(ctx, orgID, id)
	if err != nil {
		return id
	}
	if m.Name != "" {
		return m.Name
	}
	return m.Login
}

// answeredBy says who answered a request that is no longer pending (or
// that it moved on).
func (s *server) answeredBy(ctx context.Context, p *page, id string) string {
	a, err := s.store.GetApproval(ctx, p.Org.ID, id)
	if err != nil || a.Status == margen.ApprovalPending {
		return p.T("inbox.error.moved")
	}
	if a.DecidedBy == "" || a.DecidedBy == "system" {
		return p.T("inbox.error.expired")
	}
	return p.T("inbox.error.answered_by."+a.Status, "member", s.requesterName(ctx, p.Org.ID, a.DecidedBy), "at", p.Time(*a.DecidedAt))
}

// inboxEvents keeps the open inbox current (Server-Sent Events for htmx's
// SSE extension): a "pending" event with the list whenever a request the
// member may see is made, escalated or answered, a "cases" event with the
// open cases the member may close whenever a case they may see opens,
// escalates or closes (the broker's events, filtered by
// approval.Service.Visible as GET /api/v1/events filters them), and
// "sla-ID" events with each request's time left every half minute.
func (s *server) inboxEvents(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	ctx := r.Context()
	rc, end, ok := s.openStream(w, r)
	if !ok {
		return
	}
	defer end()
	evs, unsubscribe := s.broker.Subscribe(st.org.ID, func(ev events.Event) bool {
		switch ev.Type {
		case margen.EventApprovalRequested, margen.EventApprovalEscalated, margen.EventApprovalDecided,
			margen.EventCaseOpened, margen.EventCaseEscalated, margen.EventCaseClosed:
			return s.approvals.Visible(ctx, st.org, st.member, ev)
		}
		return false
	})
	defer unsubscribe()

	p := s.newPage(r, "inbox.title", nil)
	var shown []inboxItem
	sendList := func() error {
		d, err := s.pendingOnly(r, p)
		if err != nil {
			return err
		}
		shown = d.Pending
		p.Data = d
		var buf bytes.Buffer
		if err := s.views.pages["inbox"].ExecuteTemplate(&buf, "pending", p); err != nil {
			return err
		}
		writeSSE(w, "pending", buf.String())
		return rc.Flush()
	}
	sendCases := func() error {
		rows, err := s.inboxCaseRows(ctx, p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := s.views.pages["inbox"].ExecuteTemplate(&buf, "cases", map[string]any{"P": p, "D": rows}); err != nil {
			return err
		}
		writeSSE(w, "cases", buf.String())
		return rc.Flush()
	}
	// What arrived between the page's rendering and this connection.
	if err := sendList(); err != nil {
		s.log.Warn("web: inbox stream", "err", err)
		return
	}
	if err := sendCases(); err != nil {
		s.log.Warn("web: inbox stream", "err", err)
		return
	}
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	sla := time.NewTicker(time.Duration(inboxSLATick.Load()))
	defer sla.Stop()
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
		case <-sla.C:
			now := s.clock.Now()
			for _, it := range shown {
				writeSSE(w, "sla-"+it.Approval.ID, dueText(p, it.Approval.DueAt, now))
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case ev, ok := <-evs:
			if !ok {
				return
			}
			send := sendList
			switch ev.Type {
			case margen.EventCaseOpened, margen.EventCaseEscalated, margen.EventCaseClosed:
				send = sendCases
			}
			if err := send(); err != nil {
				s.log.Warn("web: inbox stream", "err", err)
				return
			}
		}
	}
}
