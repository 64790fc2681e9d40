package web

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/policy"
	"github.com/margenhq/margen/webhook"
)

// The manager's desk, second half: today at a glance, webhooks and their
// deliveries, the audit trail and its chain check. The same store calls as
// GET /api/v1/webhooks, /api/v1/audit and /api/v1/ledger/check.

const (
	todayReactions = 8
	todayAccounts  = 60 // budget accounts shown
	auditPageSize  = 50
	deliveriesPage = 50
	maxAuditAction = 64
)

var auditActionPattern = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)*$`)

// Percent is n/of as a whole percentage ("" when of is 0).
func (p *page) Percent(n, of int64) string {
	if of <= 0 {
		return ""
	}
	return strconv.FormatFloat(math.Round(float64(n)*100/float64(of)), 'f', 0, 64)
}

// --- today at a glance ---

type todayData struct {
	Day        string
	Allowed    int64
	Approval   int64
	Denied     int64
	Total      int64
	Alone      int64
	Taken      int64 // allowed + needs approval: the decisions that led to an act or a request
	Pending    int64
	OldestAge  time.Duration
	Accounts   []accountLine
	More       int // accounts not shown
	Reactions  []reactionLine
	HasPolicy  bool
	NoAccounts bool
}

type accountLine struct {
	Budget, Subject, Period string
	Limit, Used, Remaining  int64
	Over                    bool
	customer                bool // Subject is a customer's id until it is named
	team                    bool // Subject is a team's slug until it is named
}

type reactionLine struct {
	At                time.Time
	Member, Action    string
	Amount            int64
	Sentiment, Source string
	Note              string
}

// orgLocation is the organisation's time zone (UTC if it cannot be loaded).
func orgLocation(o *margen.Org) *time.Location {
	if loc, err := time.LoadLocation(o.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

func (s *server) today(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := s.newPage(r, "desk2.today.title", nil)
	loc := orgLocation(p.Org)
	now := s.clock.Now().In(loc)
	y, m, d := now.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	t, err := s.store.Today(ctx, p.Org.ID, start, start.AddDate(0, 0, 1), todayReactions)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	names, err := s.memberNames(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := &todayData{
		Day:     p.T("desk2.today.day", "date", now.Format("2006-01-02")),
		Allowed: t.Outcomes[margen.OutcomeAllowed], Approval: t.Outcomes[margen.OutcomeNeedsApproval],
		Denied: t.Outcomes[margen.OutcomeDenied], Alone: t.Alone, Pending: t.Pending,
	}
	for _, n := range t.Outcomes {
		data.Total += n
	}
	data.Taken = data.Allowed + data.Approval
	if !t.OldestPending.IsZero() {
		data.OldestAge = max(now.Sub(t.OldestPending), 0)
	}
	pol, _, err := s.engine.Policy(ctx, p.Org.ID)
	switch {
	case decision.IsNoPolicy(err):
	case err != nil:
		s.fail(w, r, err)
		return
	default:
		data.HasPolicy = true
		if data.Accounts, data.More, err = s.todayAccounts(r, p, pol, now, loc, names); err != nil {
			s.fail(w, r, err)
			return
		}
		data.NoAccounts = len(data.Accounts) == 0
	}
	for _, x := range t.Reactions {
		act := x.ActAction
		if pol != nil {
			if a, ok := pol.Action(act); ok {
				act = label(a.Label, p.Lang, a.ID)
			}
		}
		data.Reactions = append(data.Reactions, reactionLine{At: x.CreatedAt, Member: nameOr(names, x.ActMember),
			Action: act, Amount: x.ActAmount, Sentiment: p.word(sentimentKeys, x.Sentiment), Source: p.word(sourceKeys, x.Source), Note: x.Note})
	}
	p.Data = data
	s.render(w, r, http.StatusOK, "today", "", p)
}

// todayAccounts is every budget account of the current periods (one query
// per period kind the policy uses), the fullest first.
func (s *server) todayAccounts(r *http.Request, p *page, pol *policy.Policy, now time.Time, loc *time.Location, names map[string]string) ([]accountLine, int, error) {
	budgets := pol.Budgets()
	byID := map[string]policy.Budget{}
	periods := map[string]string{}
	for _, b := range budgets {
		byID[b.ID] = b
		periods[b.Period] = policy.PeriodKey(b.Period, now, loc)
	}
	var out []accountLine
	for kind, key := range periods {
		accs, err := s.store.ListBudgets(r.Context(), p.Org.ID, margen.BudgetFilter{Period: key})
		if err != nil {
			return nil, 0, err
		}
		for _, a := range accs {
			b, ok := byID[a.BudgetID]
			if !ok || b.Period != kind {
				continue
			}
			limit := b.Limit
			used := a.Balance.Used()
			subject := a.Subject
			switch b.Scope {
			case policy.ScopeMember:
				subject = nameOr(names, a.Subject)
			case policy.ScopeOrg:
				subject = p.Org.Name
			}
			out = append(out, accountLine{Budget: b.ID, Subject: subject, Period: p.word(periodKeys, b.Period),
				Limit: limit, Used: used, Remaining: max(limit-used, 0), Over: used > limit,
				customer: b.Scope == policy.ScopeCustomer, team: b.Scope == policy.ScopeTeam})
		}
	}
	slices.SortFunc(out, func(a, b accountLine) int {
		// Fullest first (limits are > 0: the policy requires it).
		if c := cmp.Compare(float64(b.Used)/float64(b.Limit), float64(a.Used)/float64(a.Limit)); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Budget, b.Budget), cmp.Compare(a.Subject, b.Subject))
	})
	more := 0
	if len(out) > todayAccounts {
		more = len(out) - todayAccounts
		out = out[:todayAccounts]
	}
	// Customers by their name (or reference) and teams by their name, not
	// their id or slug: one read each for those shown.
	var ids []string
	teams := false
	for i := range out {
		if out[i].customer {
			ids = append(ids, out[i].Subject)
		}
		teams = teams || out[i].team
	}
	customers, err := s.store.CustomersByID(r.Context(), p.Org.ID, ids)
	if err != nil {
		return nil, 0, err
	}
	teamNames := map[string]string{}
	if teams {
		ts, err := s.store.ListTeams(r.Context(), p.Org.ID)
		if err != nil {
			return nil, 0, err
		}
		for _, t := range ts {
			teamNames[t.Slug] = t.Name
		}
	}
	for i := range out {
		switch {
		case out[i].customer:
			if c := customers[out[i].Subject]; c != nil {
				out[i].Subject = cmp.Or(c.Name, c.Ref)
			}
		case out[i].team:
			out[i].Subject = cmp.Or(teamNames[out[i].Subject], out[i].Subject)
		}
	}
	return out, more, nil
}

// memberNames maps the organisation's member ids to their names.
func (s *server) memberNames(r *http.Request) (map[string]string, error) {
	return s.memberNamesOf(r.Context(), current(r).org.ID)
}

// memberNamesOf maps the organisation's member ids to their names, in one
// read.
func (s *server) memberNamesOf(ctx context.Context, orgID string) (map[string]string, error) {
	ms, err := s.store.ListMembers(ctx, orgID)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(ms))
	for _, m := range ms {
		names[m.ID] = m.Name
	}
	return names, nil
}

func nameOr(names map[string]string, id string) string {
	if n := names[id]; n != "" {
		return n
	}
	return id
}

// --- webhooks ---

type webhooksData struct {
	Hooks   []margen.Webhook
	Events  []string
	URL     string
	Chosen  map[string]bool
	URLErr  string
	EvErr   string
	Created *margen.Webhook // just created: its secret, shown this once
}

func (s *server) webhooksPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk2.webhooks.title", nil)
	if key := s.sessions.PopString(r.Context(), "notice"); key != "" {
		p.Notice = p.T(key)
	}
	if key := s.sessions.PopString(r.Context(), "error"); key != "" {
		p.Error = p.T(key)
	}
	s.renderWebhooks(w, r, p, &webhooksData{Chosen: map[string]bool{"*": true}}, http.StatusOK)
}

func (s *server) renderWebhooks(w http.ResponseWriter, r *http.Request, p *page, d *webhooksData, status int) {
	hooks, err := s.store.ListWebhooks(r.Context(), p.Org.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range hooks {
		hooks[i].Secret = "" // shown once, when created
	}
	d.Hooks = hooks
	for _, t := range margen.EventTypesAll {
		d.Events = append(d.Events, string(t))
	}
	p.Data = d
	s.render(w, r, status, "webhooks", "", p)
}

// createWebhook registers an endpoint with the same rule and store call as
// POST /api/v1/webhooks; the answer is the only page that shows its secret.
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	p := s.newPage(r, "desk2.webhooks.title", nil)
	d := &webhooksData{URL: r.PostForm.Get("url"), Chosen: map[string]bool{}}
	evs := r.PostForm["events"]
	for _, e := range evs {
		d.Chosen[e] = true
	}
	evs, err := webhook.ValidateEndpoint(d.URL, evs)
	if err != nil {
		e, ok := err.(*margen.Error)
		if !ok {
			s.fail(w, r, err)
			return
		}
		if e.Field == "events" {
			d.EvErr = p.message(err)
		} else {
			d.URLErr = p.message(err)
		}
		s.renderWebhooks(w, r, p, d, http.StatusUnprocessableEntity)
		return
	}
	st := current(r)
	hook := &margen.Webhook{ID: margen.NewID("whk"), OrgID: st.org.ID, URL: d.URL, Events: evs,
		Secret: webhook.NewSecret(), Active: true, CreatedAt: s.clock.Now()}
	if err := s.store.CreateWebhook(r.Context(), hook, st.member.ID, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	p.Notice = p.T("desk2.webhooks.created")
	s.renderWebhooks(w, r, p, &webhooksData{Created: hook, Chosen: map[string]bool{"*": true}}, http.StatusCreated)
}

// disableWebhook deactivates an endpoint (DELETE /api/v1/webhooks/{id}).
func (s *server) disableWebhook(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	if err := s.store.DeleteWebhook(r.Context(), st.org.ID, r.PathValue("id"), st.member.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.sessions.Put(r.Context(), "notice", "desk2.webhooks.disabled")
	http.Redirect(w, r, "/desk/webhooks", http.StatusSeeOther)
}

type webhookData struct {
	Hook       *margen.Webhook
	Deliveries []margen.Delivery
	Delivery   *margen.Delivery // the one opened, with its attempts
}

func (s *server) webhookPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk2.webhook.title", nil)
	hook, err := s.store.GetWebhook(r.Context(), p.Org.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderWebhook(w, r, p, hook, nil)
}

func (s *server) renderWebhook(w http.ResponseWriter, r *http.Request, p *page, hook *margen.Webhook, open *margen.Delivery) {
	hook.Secret = ""
	ds, err := s.store.ListDeliveries(r.Context(), p.Org.ID, margen.DeliveryFilter{WebhookID: hook.ID, Page: margen.Page{Limit: deliveriesPage}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if key := s.sessions.PopString(r.Context(), "notice"); key != "" {
		p.Notice = p.T(key)
	}
	if key := s.sessions.PopString(r.Context(), "error"); key != "" {
		p.Error = p.T(key)
	}
	p.Data = &webhookData{Hook: hook, Deliveries: ds, Delivery: open}
	s.render(w, r, http.StatusOK, "webhook", "", p)
}

// deliveryPage is a webhook's page with one delivery's attempts opened
// (GET /api/v1/deliveries/{id}).
func (s *server) deliveryPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk2.webhook.title", nil)
	d, err := s.store.GetDelivery(r.Context(), p.Org.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hook, err := s.store.GetWebhook(r.Context(), p.Org.ID, d.WebhookID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.renderWebhook(w, r, p, hook, d)
}

// replayDelivery queues a delivery again (POST /api/v1/deliveries/{id}/replay).
func (s *server) replayDelivery(w http.ResponseWriter, r *http.Request) {
	st := current(r)
	d, err := s.store.GetDelivery(r.Context(), st.org.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	back := "/desk/deliveries/" + d.ID
	_, err = s.store.ReplayDelivery(r.Context(), st.org.ID, d.ID, st.member.ID, s.clock.Now())
	switch {
	case margen.IsCode(err, margen.ECONFLICT):
		s.sessions.Put(r.Context(), "error", "desk2.delivery.inactive")
	case err != nil:
		s.fail(w, r, err)
		return
	default:
		s.sessions.Put(r.Context(), "notice", "desk2.delivery.replayed")
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// --- audit trail ---

type auditData struct {
	Entries   []auditLine
	Action    string
	ActionErr string
	Actions   []string // every registered action, offered by the filter
	Next      string   // query of the next (older) page
	Check     *chainCheck
}

type auditLine struct {
	margen.AuditEntry
	ActorName string
}

// chainCheck is GET /api/v1/ledger/check in words.
// chainCheck is the latest report of the ledger and audit check (the
// ledger.check job, as GET /api/v1/ledger/check serves it) in words.
type chainCheck struct {
	Running  bool   // a check is waiting or running
	Done     bool   // a report exists
	At, Took string // when the latest check finished, how long it took
	OK       bool
	Checked  int64 // audit entries that verified
	Broken   int64 // first entry whose link does not verify
	Accounts int
	Entries  int
	Ledger   []margen.LedgerMismatch
	Problems []string // the audit's other findings, in words
	More     int      // findings the report counted but does not list
}

// auditProblems are the kinds of audit findings the page writes in words
// (margen.AuditProblem.What; "chain" is Broken).
var auditProblems = []string{"key", "unsealed", "changed", "deleted", "uncommitted"}

// latestCheck reads the organisation's latest check report.
func (s *server) latestCheck(ctx context.Context, p *page) (*chainCheck, error) {
	running, err := s.store.LedgerCheckQueued(ctx, p.Org.ID)
	if err != nil {
		return nil, err
	}
	out := &chainCheck{Running: running}
	c, err := s.store.LatestLedgerCheck(ctx, p.Org.ID, false)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out.Done, out.OK = true, c.OK
	out.At, out.Took = p.Time(c.FinishedAt), p.Elapsed(max(c.FinishedAt.Sub(c.StartedAt), 0))
	out.Checked, out.Broken = c.Audit.Entries, c.Audit.Broken
	out.Accounts, out.Entries, out.Ledger = c.Ledger.Accounts, c.Ledger.Entries, c.Ledger.Mismatches
	out.More = max(c.Ledger.MismatchCount-len(c.Ledger.Mismatches), 0) + max(c.Audit.ProblemCount-len(c.Audit.Problems), 0)
	for _, x := range c.Audit.Problems {
		switch {
		case x.What == "chain":
		case slices.Contains(auditProblems, x.What):
			out.Problems = append(out.Problems, p.T("inbox2.check.problem."+x.What, "table", x.Table, "key", x.Key, "seq", x.Seq))
		default:
			out.Problems = append(out.Problems, x.Detail)
		}
	}
	return out, nil
}

func (s *server) auditPage(w http.ResponseWriter, r *http.Request) {
	s.audit(w, r)
}

// checkChain asks for the same check as POST /api/v1/ledger/check (the
// ledger re-derived and the sealed audit trail verified, as a job: it
// reads every row) and goes back to the audit page, which shows it
// running, then its report.
func (s *server) checkChain(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	if _, err := margen.QueueLedgerCheck(r.Context(), s.store, current(r).org.ID, margen.LedgerCheckJob{}, s.clock.Now()); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/desk/audit#check", http.StatusSeeOther)
}

// chainStatus answers the check's status alone, for the audit page that
// refreshes it while a check runs (htmx); a browser without it is sent to
// the audit page.
func (s *server) chainStatus(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("HX-Request") != "true" {
		http.Redirect(w, r, "/desk/audit#check", http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "desk2.audit.title", nil)
	c, err := s.latestCheck(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = &auditData{Check: c}
	s.render(w, r, http.StatusOK, "audit", "check", p)
}

func (s *server) audit(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "desk2.audit.title", nil)
	q := r.URL.Query()
	check, err := s.latestCheck(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := &auditData{Action: q.Get("action"), Check: check}
	for _, a := range margen.AuditActions {
		d.Actions = append(d.Actions, string(a.Action))
	}
	f := margen.AuditFilter{Action: d.Action, Limit: auditPageSize + 1}
	status := http.StatusOK
	if d.Action != "" && (len(d.Action) > maxAuditAction || !auditActionPattern.MatchString(d.Action)) {
		d.ActionErr = p.T("desk2.audit.bad_action", "max", maxAuditAction)
		f.Action = ""
		status = http.StatusBadRequest
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || len(v) > 19 {
			s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
			return
		}
		f.Before = n
	}
	es, err := s.store.ListAuditNewest(r.Context(), p.Org.ID, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	names, err := s.memberNames(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(es) > auditPageSize {
		es = es[:auditPageSize]
		next := "?before=" + strconv.FormatInt(es[len(es)-1].Seq, 10)
		if f.Action != "" {
			next += "&action=" + f.Action // matches auditActionPattern: nothing to escape
		}
		d.Next = next
	}
	for _, e := range es {
		d.Entries = append(d.Entries, auditLine{AuditEntry: e, ActorName: p.actorName(names, e.Actor)})
	}
	p.Data = d
	s.render(w, r, status, "audit", "", p)
}

// Words for stored values, each a full catalogue key (the catalogue test
// checks them).
var (
	sentimentKeys = map[string]string{margen.SentimentPositive: "desk2.sentiment.positive",
		margen.SentimentNeutral: "desk2.sentiment.neutral", margen.SentimentNegative: "desk2.sentiment.negative"}
	sourceKeys = map[string]string{margen.SourceEmployee: "desk2.source.employee", margen.SourceCustomer: "desk2.source.customer"}
	periodKeys = map[string]string{policy.PeriodDay: "desk2.period.day", policy.PeriodWeek: "desk2.period.week",
		policy.PeriodMonth: "desk2.period.month"}
	statusKeys = map[string]string{margen.DeliveryPending: "desk2.delivery.pending",
		margen.DeliveryDelivered: "desk2.delivery.delivered", margen.DeliveryFailed: "desk2.delivery.failed"}
)

func (p *page) word(keys map[string]string, v string) string {
	if k, ok := keys[v]; ok {
		return p.T(k)
	}
	return v
}

// DeliveryStatus is a delivery's status in words.
func (p *page) DeliveryStatus(s string) string { return p.word(statusKeys, s) }

// Age writes how long ago something happened, at least a minute.
func (p *page) Age(d time.Duration) string {
	return p.Elapsed(max(d.Truncate(time.Minute), time.Minute))
}
