package demo

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
	_ "time/tzdata" // America/Bogota must load even where the system has no zoneinfo

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/policy"
)

//go:embed policy.yaml
var policySource string

// PolicySource returns the demo organisation's latitude policy (YAML).
func PolicySource() string { return policySource }

// Facts of the demo organisation.
const (
	Slug        = "demo"
	Name        = "Grupo La Brasa"
	Currency    = "COP"
	Timezone    = "America/Bogota"
	Language    = "es"
	AdminLogin  = "admin"
	Days        = 90
	DefaultSeed = 20090824 // the day "El cliente es como es" was written
	actor       = "demo"
)

// Options tune Load. Zero values take the defaults.
type Options struct {
	// Now is the end of the history; zero means the current time.
	Now time.Time
	// Seed makes the history reproducible; 0 means DefaultSeed.
	Seed int64
	// Out receives a few progress lines; nil discards them.
	Out io.Writer
	// SurveyKey is the installation's survey token key
	// (margen.AuditKey.SurveyKey), so that the printed sheet of the demo's
	// standing QR codes scans on its server; nil means a random key (the
	// codes then only work where that does not matter, as in tests).
	SurveyKey []byte
}

// Result says what Load did.
type Result struct {
	// AlreadyLoaded is true when the organisation existed: nothing was
	// written, and only Org and AdminLogin are set.
	AlreadyLoaded bool
	Org           *margen.Org
	AdminLogin    string
	// AdminPassword is the owner's password, in clear, only on the first
	// load: it is not stored anywhere but as a hash.
	AdminPassword string
	PolicyVersion int

	Teams, Members, Customers int
	Decisions                 int
	Allowed                   int
	NeedsApproval             int
	Approved, Rejected        int // requests answered by a supervisor or manager
	Denied                    int
	Flagged                   int
	Reactions                 int
	Refusals                  int // given outside the decision flow
	SurveyPoints              int // standing QR codes
	SurveyLinks               int // survey links made after an act
	SurveyAnswers             int // through links and standing QR codes
	// Erased is the customer who asked to be forgotten: erased, after the
	// history, through the same path as the desk's button.
	Erased   string
	From, To time.Time
}

// stepClock is the engine's clock during the load: the generator sets it to
// the moment of each decision and learns, through the channel set returns,
// when the engine has read it.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	read chan struct{}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.read != nil {
		close(c.read)
		c.read = nil
	}
	return c.t
}

func (c *stepClock) set(t time.Time) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t.UTC().Truncate(time.Microsecond)
	c.read = make(chan struct{})
	return c.read
}

// Store is what loading the demo asks of the database (margen.Store has
// it): what the decision engine needs, the writes of an organisation's
// setup and history, and the reads and checks that verify it.
type Store interface {
	decision.Store
	OrgBySlug(ctx context.Context, slug string) (*margen.Org, error)
	// Analyze refreshes the planner's statistics after the bulk load.
	Analyze(ctx context.Context) error
	CreateOrg(ctx context.Context, org *margen.Org, owner *margen.Member, actor string) error
	CreateTeam(ctx context.Context, t *margen.Team, actor string) error
	ListTeams(ctx context.Context, orgID string) ([]margen.Team, error)
	CreateMember(ctx context.Context, m *margen.Member, actor string) error
	ListMembers(ctx context.Context, orgID string) ([]margen.Member, error)
	UpsertCustomer(ctx context.Context, c *margen.Customer, actor string) error
	PublishPolicy(ctx context.Context, pv *margen.PolicyVersion, idem *margen.IdemWrite[*margen.PolicyVersion]) error
	GetApproval(ctx context.Context, orgID, id string) (*margen.Approval, error)
	ResolveApproval(ctx context.Context, orgID, approvalID string, level int,
		resolve func(*margen.ResolutionState) (*margen.ResolutionWrite, error)) (*margen.Approval, error)
	RecordReaction(ctx context.Context, r *margen.Reaction, idem *margen.Idempotency) error
	RecordRefusal(ctx context.Context, r *margen.Refusal, c *margen.Customer, idem *margen.Idempotency) error
	ListDecisions(ctx context.Context, orgID string, f margen.DecisionFilter) ([]margen.Decision, error)
	ListRefusals(ctx context.Context, orgID string, f margen.RefusalFilter) ([]margen.Refusal, error)
	CheckLedger(ctx context.Context, orgID string) (margen.LedgerReport, error)
	EraseCustomer(ctx context.Context, orgID, customerID, actor string, at time.Time, idem *margen.IdemWrite[*margen.Erasure]) (*margen.Erasure, error)
	VerifyAudit(ctx context.Context, orgID string) (broken int64, checked int64, err error)
}

// Load creates the demo organisation with its history, unless an
// organisation with the slug "demo" exists: then it returns
// Result{AlreadyLoaded: true} and writes nothing.
//
// Load is not atomic: if it is interrupted, the organisation exists with part
// of its history; delete the database (or use another one) to start over.
func Load(ctx context.Context, st Store, opt Options) (Result, error) {
	org, err := st.OrgBySlug(ctx, Slug)
	if err == nil {
		return Result{AlreadyLoaded: true, Org: org, AdminLogin: AdminLogin}, nil
	}
	if !margen.IsCode(err, margen.ENOTFOUND) {
		return Result{}, err
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if opt.Seed == 0 {
		opt.Seed = DefaultSeed
	}
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	loc, err := time.LoadLocation(Timezone)
	if err != nil {
		return Result{}, err
	}
	ss, ok := st.(margen.SurveyStore)
	if !ok {
		return Result{}, fmt.Errorf("demo: the store %T keeps no surveys", st)
	}
	pol, err := policy.Parse([]byte(policySource))
	if err != nil {
		return Result{}, fmt.Errorf("demo: the embedded policy is invalid: %w", err)
	}

	now := opt.Now.In(loc)
	y, m, d := now.Date()
	// The history covers the Days days before today and stops at midnight,
	// so today's budgets are untouched: the quick tour works at any hour.
	today := time.Date(y, m, d, 0, 0, 0, 0, loc)
	first := today.AddDate(0, 0, -Days)
	setup := first.AddDate(0, 0, -1).Add(9 * time.Hour)

	g := &generator{
		st:     st,
		rng:    rand.New(rand.NewPCG(uint64(opt.Seed), uint64(opt.Seed)^0x9e3779b97f4a7c15)),
		clock:  &stepClock{},
		loc:    loc,
		now:    today,
		first:  first,
		pol:    pol,
		out:    out,
		byRole: map[string][]*margen.Member{},
		ss:     ss,
		srng:   rand.New(rand.NewPCG(uint64(opt.Seed)^surveyStream, uint64(opt.Seed))),
		tokens: surveyTokens(opt.SurveyKey),
	}
	res := Result{AdminLogin: AdminLogin, From: first, To: today}

	fmt.Fprintf(out, "demo: creating %s (%s)\n", Name, Slug)
	res.AdminPassword = auth.NewPassword()
	hash, err := auth.HashPassword(res.AdminPassword)
	if err != nil {
		return Result{}, err
	}
	org = &margen.Org{Slug: Slug, Name: Name, Currency: Currency, Timezone: Timezone, Language: Language, CreatedAt: setup}
	owner := &margen.Member{Login: people[0].login, Name: people[0].name, Access: people[0].access,
		Role: people[0].role, Language: Language, Active: true, PasswordHash: hash, CreatedAt: setup}
	if err := st.CreateOrg(ctx, org, owner, actor); err != nil {
		if margen.IsCode(err, margen.ECONFLICT) {
			// Another load won the race.
			org, err2 := st.OrgBySlug(ctx, Slug)
			if err2 == nil {
				return Result{AlreadyLoaded: true, Org: org, AdminLogin: AdminLogin}, nil
			}
		}
		return Result{}, err
	}
	g.org = org
	res.Org = org
	g.add(owner)

	at := setup
	tick := func() time.Time { at = at.Add(time.Minute); return at }
	for _, t := range []margen.Team{
		{OrgID: org.ID, Slug: teamRestaurant, Name: "La Brasa — Costillas BBQ"},
		{OrgID: org.ID, Slug: teamContact, Name: "Centro de atención"},
	} {
		t.CreatedAt = tick()
		if err := st.CreateTeam(ctx, &t, owner.ID); err != nil {
			return Result{}, err
		}
		res.Teams++
	}
	for _, p := range people[1:] {
		m := &margen.Member{OrgID: org.ID, Login: p.login, Name: p.name, Access: p.access, Role: p.role,
			Team: p.team, Language: Language, Active: true, CreatedAt: tick()}
		if err := st.CreateMember(ctx, m, owner.ID); err != nil {
			return Result{}, err
		}
		g.add(m)
	}
	res.Members = len(people)

	pv := &margen.PolicyVersion{OrgID: org.ID, Source: policySource, CreatedBy: owner.ID,
		Note: "Política inicial: la canasta de pan ya no necesita permiso", CreatedAt: tick()}
	if err := st.PublishPolicy(ctx, pv, nil); err != nil {
		return Result{}, err
	}
	res.PolicyVersion = pv.Version

	for _, c := range customerSeeds() {
		cus := &margen.Customer{OrgID: org.ID, Ref: c.ref, Name: c.name, Contact: c.contact, Tags: c.tags, CreatedAt: tick()}
		if err := st.UpsertCustomer(ctx, cus, owner.ID); err != nil {
			return Result{}, err
		}
		g.addCustomer(c)
	}
	res.Customers = len(g.customers[teamRestaurant]) + len(g.customers[teamContact]) + len(g.staffRelatives)

	if err := g.createSurveyPoints(ctx, owner, tick, &res); err != nil {
		return Result{}, err
	}

	fmt.Fprintf(out, "demo: replaying %d days of history through the decision engine\n", Days)
	g.engine = decision.New(st, decision.Options{Clock: g.clock, Logger: slog.New(slog.DiscardHandler)})
	err = g.history(ctx, &res)
	g.engine.Close()
	if err != nil {
		return Result{}, err
	}
	// One customer of the contact centre asked to be forgotten: their
	// data is erased the evening before today, and their acts and scores
	// still count.
	gone := customerSeeds()[erasedSeed]
	er, err := st.EraseCustomer(ctx, org.ID, margen.CustomerID(org.ID, gone.ref), owner.ID, today.Add(-time.Hour), nil)
	if err != nil {
		return Result{}, err
	}
	res.Erased = er.CustomerID
	// A database just filled in bulk has no statistics yet: without them
	// PostgreSQL plans the first pages' reads as scans of whole tables.
	if err := st.Analyze(ctx); err != nil {
		return Result{}, err
	}
	fmt.Fprintf(out, "demo: %d decisions (%d allowed, %d asked for approval: %d approved, %d rejected; %d denied), %d reactions, %d other refusals\n",
		res.Decisions, res.Allowed, res.NeedsApproval, res.Approved, res.Rejected, res.Denied, res.Reactions, res.Refusals)
	fmt.Fprintf(out, "demo: %d standing QR codes, %d survey links, %d survey answers\n", res.SurveyPoints, res.SurveyLinks, res.SurveyAnswers)
	fmt.Fprintf(out, "demo: customer %s asked to be forgotten: erased\n", res.Erased)
	return res, nil
}
