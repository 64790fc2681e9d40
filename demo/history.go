package demo

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/policy"
)

// generator writes the history of the demo organisation.
type generator struct {
	st     Store
	engine *decision.Engine
	rng    *rand.Rand
	clock  *stepClock
	loc    *time.Location
	now    time.Time
	first  time.Time
	pol    *policy.Policy
	out    io.Writer
	org    *margen.Org

	byRole         map[string][]*margen.Member
	customers      map[string][]customerSeed // team -> known customers
	regulars       map[string][]customerSeed // team -> frecuente or vip
	staffRelatives []customerSeed
	walkIns        map[string]bool

	// The customer's voice: its own random source, the token maker and
	// the standing QR codes.
	ss     margen.SurveyStore
	srng   *rand.Rand
	tokens *margen.SurveyTokens
	points []*margen.SurveyPoint

	queue eventQueue
	seq   int
	today []*plannedDecision
}

func (g *generator) add(m *margen.Member) {
	g.byRole[m.Role] = append(g.byRole[m.Role], m)
}

func (g *generator) addCustomer(c customerSeed) {
	if g.customers == nil {
		g.customers = map[string][]customerSeed{}
		g.regulars = map[string][]customerSeed{}
		g.walkIns = map[string]bool{}
	}
	if slices.Contains(c.tags, "empleado") {
		g.staffRelatives = append(g.staffRelatives, c)
		return
	}
	g.customers[c.team] = append(g.customers[c.team], c)
	if slices.Contains(c.tags, "frecuente") || slices.Contains(c.tags, "vip") {
		g.regulars[c.team] = append(g.regulars[c.team], c)
	}
}

// event is something that happens at a moment of the history.
type event struct {
	at  time.Time
	seq int // ties keep insertion order
	run func(ctx context.Context) error
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (g *generator) schedule(at time.Time, run func(ctx context.Context) error) {
	g.seq++
	heap.Push(&g.queue, &event{at: at.UTC().Truncate(time.Microsecond), seq: g.seq, run: run})
}

// plannedDecision is a decision of the day, with what follows from it (the
// reactions to its act).
type plannedDecision struct {
	at     time.Time
	req    *decision.Request
	follow func(d *margen.Decision)
	result decision.Result
	err    error
}

// history plans each day and replays it up to now: first the day's
// decisions, then everything else (reactions, surveys, refusals given
// outside the flow) in time order.
//
// The day's decisions are asked concurrently, so that the engine commits
// them in a few group commits instead of one transaction each, which keeps a
// load to a few seconds. Each still gets its own moment: the clock is set to
// it and the next one is only started once the engine has read it.
func (g *generator) history(ctx context.Context, res *Result) error {
	for day := range Days {
		date := g.first.AddDate(0, 0, day)
		progress := float64(day) / float64(Days-1)
		g.plan(date, progress, res)
		g.schedulePointAnswers(date, progress, res)
		if err := g.decideToday(ctx); err != nil {
			return err
		}
		end := date.AddDate(0, 0, 1)
		if end.After(g.now) {
			end = g.now
		}
		for g.queue.Len() > 0 && g.queue[0].at.Before(end) {
			if err := ctx.Err(); err != nil {
				return err
			}
			e := heap.Pop(&g.queue).(*event)
			if err := e.run(ctx); err != nil {
				return err
			}
		}
		if day%30 == 29 {
			fmt.Fprintf(g.out, "demo: %s done, %d decisions so far\n", date.Format("2006-01-02"), res.Decisions)
		}
	}
	return nil // events after now (a survey not yet answered) never happen
}

func (g *generator) decideToday(ctx context.Context) error {
	today := g.today
	g.today = nil
	slices.SortStableFunc(today, func(a, b *plannedDecision) int { return a.at.Compare(b.at) })
	var wg sync.WaitGroup
	for _, pd := range today {
		read := g.clock.set(pd.at)
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			pd.result, pd.err = g.engine.Decide(ctx, pd.req)
		}()
		select {
		case <-read: // the engine has taken its time; the next may go
		case <-done:
		}
	}
	wg.Wait()
	for _, pd := range today {
		if pd.err != nil {
			return fmt.Errorf("demo: decision %q at %s: %w", pd.req.Reason, pd.at.Format(time.RFC3339), pd.err)
		}
		pd.follow(pd.result.Decision)
	}
	return nil
}

// poisson draws a count with mean lambda (Knuth; lambda is small here).
func (g *generator) poisson(lambda float64) int { return g.poissonWith(g.rng, lambda) }

// poissonWith draws a count with mean lambda from r.
func (g *generator) poissonWith(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func active(progress, from, until float64) bool {
	if until == 0 {
		until = 1
	}
	return progress >= from && progress <= until
}

func weight(w, trend, progress float64) float64 {
	return max(w*(1+trend*progress), 0)
}

// between returns a moment of date between two times of day (hours).
func (g *generator) between(date time.Time, from, to float64) time.Time {
	h := from + g.rng.Float64()*(to-from)
	return date.Add(time.Duration(h * float64(time.Hour))).Truncate(time.Second)
}

// moment returns when a scenario of a team happens on date: the restaurant
// at lunch or dinner, the contact centre in office hours (short on Sunday).
func (g *generator) moment(team string, date time.Time) time.Time {
	switch team {
	case teamRestaurant:
		if g.rng.Float64() < 0.6 {
			return g.between(date, 12, 15.5)
		}
		return g.between(date, 18.5, 22)
	case teamContact:
		if date.Weekday() == time.Sunday {
			return g.between(date, 9, 14)
		}
		return g.between(date, 8, 20)
	}
	return g.between(date, 10, 18)
}

// plan schedules one day: frontline moments of truth, the supervisors' and
// the manager's bigger decisions, and the "no"s given outside the flow.
func (g *generator) plan(date time.Time, progress float64, res *Result) {
	growth := 0.92 + 0.16*progress
	rest := 11.0
	switch date.Weekday() {
	case time.Friday, time.Saturday, time.Sunday:
		rest *= 1.4
	}
	contact := 13.0
	if date.Weekday() == time.Sunday {
		contact *= 0.4
	}
	for _, tm := range []struct {
		team string
		mean float64
	}{{teamRestaurant, rest * growth}, {teamContact, contact * growth}} {
		team, mean := tm.team, tm.mean
		var pool []*scenario
		var weights []float64
		for i := range scenarios {
			s := &scenarios[i]
			if s.team != team || slices.Contains(s.roles, "supervisor") || slices.Contains(s.roles, "gerente") ||
				!active(progress, s.from, s.until) {
				continue
			}
			pool = append(pool, s)
			weights = append(weights, weight(s.weight, s.trend, progress))
		}
		n := max(int(math.Round(mean+g.rng.NormFloat64()*math.Sqrt(mean))), 0)
		for range n {
			s := pool[pick(g.rng, weights)]
			g.scheduleDecision(s, g.moment(team, date), date, progress, res)
		}
	}
	for i := range scenarios {
		s := &scenarios[i]
		if !slices.Contains(s.roles, "supervisor") && !slices.Contains(s.roles, "gerente") {
			continue
		}
		for range g.poisson(weight(s.weight, s.trend, progress)) {
			g.scheduleDecision(s, g.moment(s.team, date), date, progress, res)
		}
	}
	for i := range refusalScenarios {
		s := &refusalScenarios[i]
		if !active(progress, 0, s.until) {
			continue
		}
		for range g.poisson(weight(s.weight, s.trend, progress)) {
			g.scheduleRefusal(s, g.moment(s.team, date), res)
		}
	}
}

func pick(r *rand.Rand, weights []float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

func oneOf[T any](r *rand.Rand, xs []T) T {
	return xs[r.IntN(len(xs))]
}

// member picks who lives a scenario: someone with one of its roles, in its
// team when it has one.
func (g *generator) member(roles []string, team string) *margen.Member {
	var pool []*margen.Member
	for _, role := range roles {
		for _, m := range g.byRole[role] {
			if team == "" || m.Team == team {
				pool = append(pool, m)
			}
		}
	}
	if len(pool) == 0 {
		return nil
	}
	return oneOf(g.rng, pool)
}

// customer picks the customer of a scenario.
func (g *generator) customer(s *scenario, date time.Time, ctxv map[string]any) decision.CustomerInput {
	team := s.team
	if team == "" {
		team = teamRestaurant
	}
	kind := s.customer
	if kind == anyCustomer && g.rng.Float64() < 0.15 {
		kind = walkIn
	}
	var c customerSeed
	switch kind {
	case regular:
		c = oneOf(g.rng, g.regulars[team])
	case staffRelative:
		c = g.staffRelatives[0]
	case walkIn:
		if team == teamRestaurant {
			table, ok := ctxv["table"].(int)
			if !ok {
				table = 1 + g.rng.IntN(28)
			}
			return decision.CustomerInput{Ref: fmt.Sprintf("mesa-%02d/%s", table, date.Format("2006-01-02"))}
		}
		phone := fmt.Sprintf("+57 3%02d %03d %04d", g.rng.IntN(50), g.rng.IntN(1000), g.rng.IntN(10000))
		return decision.CustomerInput{Ref: phone, Contact: phone}
	default:
		c = oneOf(g.rng, g.customers[team])
	}
	return decision.CustomerInput{Ref: c.ref, Name: c.name, Contact: c.contact, Tags: c.tags}
}

// amount draws an amount in pesos, rounded to $500, and returns centavos.
func (g *generator) amount(s *scenario) int64 {
	if s.max == 0 {
		return 0
	}
	a := s.min
	if s.max > s.min {
		a += g.rng.Int64N(s.max - s.min + 1)
	}
	return max(a/500*500, 500) * 100
}

func (g *generator) scheduleDecision(s *scenario, at, date time.Time, progress float64, res *Result) {
	if at.After(g.now) {
		return
	}
	m := g.member(s.roles, s.team)
	if m == nil {
		return
	}
	amount := g.amount(s)
	var ctxv map[string]any
	if s.context != nil {
		ctxv = s.context(g.rng, amount)
	}
	cus := g.customer(s, date, ctxv)
	reason := oneOf(g.rng, s.reasons)
	var raw json.RawMessage
	if ctxv != nil {
		raw, _ = json.Marshal(ctxv)
	}
	req := &decision.Request{Org: g.org, Member: m, Action: s.action, Amount: amount, Customer: cus,
		Reason: reason, Context: raw}
	// Draw the reactions now, so the random sequence does not depend on the
	// outcomes (which depend on budgets).
	reacts := g.rng.Float64() < 0.78+0.14*progress
	sentiment := g.sentiment(progress)
	delay := time.Duration(2+g.rng.IntN(20)) * time.Minute
	surveyed := g.rng.Float64() < 0.06+0.06*progress
	surveyDelay := time.Duration(1+g.rng.IntN(30)) * time.Hour
	surveySentiment := g.sentiment(progress)
	notePick := g.rng.Uint64()
	// Most requests above latitude are answered within minutes, most of
	// them with a yes; a few are left for the SLA worker.
	answered := g.rng.Float64() < 0.94
	approve := g.rng.Float64() < 0.8+0.1*progress
	answerDelay := time.Duration(1+g.rng.IntN(12)) * time.Minute

	g.today = append(g.today, &plannedDecision{at: at, req: req, follow: func(d *margen.Decision) {
		res.Decisions++
		if !g.walkIns[cus.Ref] && cus.Name == "" {
			g.walkIns[cus.Ref] = true
			res.Customers++
		}
		switch d.Outcome {
		case margen.OutcomeAllowed:
			res.Allowed++
		case margen.OutcomeNeedsApproval:
			res.NeedsApproval++
			if answered {
				g.scheduleAnswer(d, m, at.Add(answerDelay), approve, res)
			}
		default:
			res.Denied++
		}
		if d.Flagged {
			res.Flagged++
		}
		if d.ActID == "" {
			return
		}
		if g.srng.Float64() < 0.07+0.05*progress {
			g.scheduleLinkSurvey(d, m, at, progress, res)
		}
		if reacts {
			note := g.note(s, sentiment, notePick)
			rr := &margen.Reaction{OrgID: g.org.ID, ActID: d.ActID, Source: margen.SourceEmployee,
				Sentiment: sentiment, Note: note, MemberID: m.ID, CreatedAt: at.Add(delay)}
			g.schedule(rr.CreatedAt, func(ctx context.Context) error {
				if err := g.st.RecordReaction(ctx, rr, nil); err != nil {
					return fmt.Errorf("demo: reaction: %w", err)
				}
				res.Reactions++
				return nil
			})
		}
		if surveyed {
			notes := customerGood
			if surveySentiment == margen.SentimentNegative {
				notes = customerBad
			}
			rr := &margen.Reaction{OrgID: g.org.ID, ActID: d.ActID, Source: margen.SourceCustomer,
				Sentiment: surveySentiment, Note: notes[notePick%uint64(len(notes))], CreatedAt: at.Add(surveyDelay)}
			g.schedule(rr.CreatedAt, func(ctx context.Context) error {
				if err := g.st.RecordReaction(ctx, rr, nil); err != nil {
					return fmt.Errorf("demo: survey reaction: %w", err)
				}
				res.Reactions++
				return nil
			})
		}
	}})
}

// sentiment draws how a customer took an act: mostly well, and better as
// the team learns to use its latitude.
func (g *generator) sentiment(progress float64) string {
	x := g.rng.Float64()
	switch {
	case x < 0.70+0.18*progress:
		return margen.SentimentPositive
	case x < 0.90+0.06*progress:
		return margen.SentimentNeutral
	}
	return margen.SentimentNegative
}

func (g *generator) note(s *scenario, sentiment string, pick uint64) string {
	var notes []string
	switch sentiment {
	case margen.SentimentPositive:
		notes = s.good
		if len(notes) == 0 {
			notes = genericGood
		}
	case margen.SentimentNeutral:
		notes = s.neutral
		if len(notes) == 0 {
			notes = genericNeutral
		}
	default:
		notes = s.bad
		if len(notes) == 0 {
			notes = genericBad
		}
	}
	return notes[pick%uint64(len(notes))]
}

func (g *generator) scheduleRefusal(s *refusalScenario, at time.Time, res *Result) {
	if at.After(g.now) {
		return
	}
	m := g.member(s.roles, s.team)
	if m == nil {
		return
	}
	var cusID string
	if cs := g.customers[s.team]; len(cs) > 0 && g.rng.Float64() < 0.4 {
		cusID = margen.CustomerID(g.org.ID, oneOf(g.rng, cs).ref)
	}
	r := &margen.Refusal{OrgID: g.org.ID, MemberID: m.ID, CustomerID: cusID, Wanted: s.wanted,
		ReasonKind: s.kind, Left: oneOf(g.rng, s.left), Note: s.note}
	g.schedule(at, func(ctx context.Context) error {
		r.CreatedAt = at
		if err := g.st.RecordRefusal(ctx, r, nil, nil); err != nil {
			return fmt.Errorf("demo: refusal: %w", err)
		}
		res.Refusals++
		return nil
	})
}

// scheduleAnswer has someone who may decide answer an approval request: a
// member of the routed role in the requester's team if there is one, else
// anyone with that role, else the owner.
func (g *generator) scheduleAnswer(d *margen.Decision, requester *margen.Member, at time.Time, approve bool, res *Result) {
	if at.After(g.now) {
		return
	}
	g.schedule(at, func(ctx context.Context) error {
		a, err := g.st.GetApproval(ctx, g.org.ID, d.ApprovalID)
		if err != nil {
			return fmt.Errorf("demo: approval: %w", err)
		}
		var by *margen.Member
		for _, m := range g.byRole[a.ApproverRole] {
			if m.ID != requester.ID && (by == nil || m.Team == requester.Team) {
				by = m
			}
		}
		if by == nil {
			by = g.byRole["owner"][0]
		}
		r := margen.Resolution{ApprovalID: a.ID, Level: a.Level, Status: margen.ApprovalRejected, Actor: by.ID, At: at}
		if approve {
			r.Status, r.ActID = margen.ApprovalApproved, margen.NewID("act")
			r.Comment = "Adelante."
		} else {
			r.Comment = "Esta vez no: ofrécele otra alternativa."
		}
		if _, err := g.st.ResolveApproval(ctx, g.org.ID, r.ApprovalID, r.Level, approval.Resolver(r, nil)); err != nil {
			return fmt.Errorf("demo: answer approval: %w", err)
		}
		if approve {
			res.Approved++
		} else {
			res.Rejected++
		}
		return nil
	})
}
