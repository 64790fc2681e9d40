package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/importer"
)

// Store is what the pages ask of the database (margen.Store has it all):
// the account, desk, survey, upload and export methods, the backup jobs,
// and the reads and writes of the pages.
// The decision engine and the approval service bring their own.
type Store interface {
	margen.AccountStore
	margen.DeskStore
	margen.SurveyStore
	margen.CaseStore
	margen.SurveyEmailStore
	margen.UploadStore
	margen.ExportStore
	backup.RecentJobs
	backup.Enqueuer

	// Organisations, teams and members.
	OrgByID(ctx context.Context, id string) (*margen.Org, error)
	OrgBySlug(ctx context.Context, slug string) (*margen.Org, error)
	CreateOrg(ctx context.Context, org *margen.Org, owner *margen.Member, actor string) error
	CreateTeam(ctx context.Context, t *margen.Team, actor string) error
	ListTeams(ctx context.Context, orgID string) ([]margen.Team, error)
	MemberByID(ctx context.Context, orgID, id string) (*margen.Member, error)
	MemberByLogin(ctx context.Context, orgID, login string) (*margen.Member, error)
	ListMembers(ctx context.Context, orgID string) ([]margen.Member, error)
	SetMemberActive(ctx context.Context, orgID, memberID string, active bool, actor string) error

	// Policies.
	ActivePolicy(ctx context.Context, orgID string) (*margen.PolicyVersion, error)
	PolicyByVersion(ctx context.Context, orgID string, version int) (*margen.PolicyVersion, error)
	ListPolicies(ctx context.Context, orgID string) ([]margen.PolicyVersion, error)
	PublishPolicy(ctx context.Context, pv *margen.PolicyVersion, idem *margen.IdemWrite[*margen.PolicyVersion]) error

	// Records.
	GetDecision(ctx context.Context, orgID, id string) (*margen.Decision, error)
	GetAct(ctx context.Context, orgID, id string) (*margen.Act, error)
	ListActs(ctx context.Context, orgID string, f margen.ActFilter) ([]margen.Act, error)
	ListRefusals(ctx context.Context, orgID string, f margen.RefusalFilter) ([]margen.Refusal, error)
	RecordReaction(ctx context.Context, r *margen.Reaction, idem *margen.Idempotency) error
	RecordRefusal(ctx context.Context, r *margen.Refusal, c *margen.Customer, idem *margen.Idempotency) error
	CustomerByID(ctx context.Context, orgID, id string) (*margen.Customer, error)
	EraseCustomer(ctx context.Context, orgID, customerID, actor string, at time.Time, idem *margen.IdemWrite[*margen.Erasure]) (*margen.Erasure, error)
	ExportCustomer(ctx context.Context, orgID, customerID string, fn func(section string, v any) error) error
	ListBudgets(ctx context.Context, orgID string, f margen.BudgetFilter) ([]margen.BudgetAccount, error)
	GetApproval(ctx context.Context, orgID, id string) (*margen.Approval, error)

	// Webhooks.
	CreateWebhook(ctx context.Context, w *margen.Webhook, actor string, idem *margen.Idempotency) error
	ListWebhooks(ctx context.Context, orgID string) ([]margen.Webhook, error)
	GetWebhook(ctx context.Context, orgID, id string) (*margen.Webhook, error)
	DeleteWebhook(ctx context.Context, orgID, id, actor string) error
	ListDeliveries(ctx context.Context, orgID string, f margen.DeliveryFilter) ([]margen.Delivery, error)
	GetDelivery(ctx context.Context, orgID, id string) (*margen.Delivery, error)
	ReplayDelivery(ctx context.Context, orgID, id, actor string, now time.Time) (*margen.Delivery, error)

	// Idempotency and control.
	Idempotency(ctx context.Context, orgID, memberID, key string) (*margen.Idempotency, error)
	LedgerCheckQueued(ctx context.Context, orgID string) (bool, error)
	LatestLedgerCheck(ctx context.Context, orgID string, ok bool) (*margen.LedgerCheck, error)
}

// Config is what the web pages need; Store, Sessions, Engine, Approvals,
// Broker and Catalog are required.
type Config struct {
	Store     Store
	Sessions  scs.Store // the sessions table of the same database (store.DB.Sessions)
	Engine    *decision.Engine
	Approvals *approval.Service
	Broker    *events.Broker
	Catalog   *i18n.Catalog
	Logger    *slog.Logger // default slog.Default()
	Clock     margen.Clock // default margen.SystemClock

	// InsecureCookies sends the session cookie without Secure (and without
	// the __Host- prefix that requires it), for plain-HTTP local use only.
	InsecureCookies bool
	// SessionIdle ends a session unused for this long (default 8h: a shift);
	// SessionLifetime ends any session this long after sign-in (default 24h).
	SessionIdle     time.Duration
	SessionLifetime time.Duration
	// Streams bounds the live streams per member and organisation, shared
	// with the JSON API's (default: events.NewStreamLimits's defaults).
	Streams *events.StreamLimits
	// Shutdown, closed when the server begins shutting down, ends the live
	// streams.
	Shutdown <-chan struct{}
	// Surveys configure the survey links and standing QR codes (survey.go).
	Surveys SurveyOptions
	// Backups are the scheduled backups the desk shows and asks for (nil:
	// not configured); Imports the progress of the imports this process
	// runs (backups.go, imports.go).
	Backups *backup.Scheduler
	Imports *importer.Tracker
}

// Default session timeouts.
const (
	DefaultSessionIdle     = 8 * time.Hour
	DefaultSessionLifetime = 24 * time.Hour
)

// server holds what every handler needs.
type server struct {
	store     Store
	engine    *decision.Engine
	approvals *approval.Service
	broker    *events.Broker
	cat       *i18n.Catalog
	log       *slog.Logger
	clock     margen.Clock
	shutdown  <-chan struct{}
	streams   *events.StreamLimits
	backups   *backup.Scheduler
	imports   *importer.Tracker

	sessions *scs.SessionManager
	views    *views
	assets   *assets
	throttle *throttle
	secure   bool
	idle     time.Duration // a session unused this long ends
	survey   *surveys
}

// route is one entry of the route table. minAccess is the least access
// level that may call it; public routes ("") need no session.
type route struct {
	pattern   string
	handler   http.HandlerFunc
	minAccess string
}

func (s *server) routes() []route {
	const (
		public    = ""
		frontline = margen.AccessFrontline
		manager   = margen.AccessManager
	)
	return append([]route{
		{"GET /{$}", s.home, public},
		{"GET /static/{hash}/{name...}", s.assets.serve, public},
		{"GET /setup", s.setupPage, public},
		{"POST /setup", s.setup, public},
		{"GET /signin", s.signinPage, public},
		{"POST /signin", s.signin, public},
		{"POST /signout", s.signout, public},
		{"POST /language", s.language, public},

		{"GET /account", s.accountPage, frontline},
		{"POST /account/password", s.password, frontline},

		{"GET /counter", s.counter, frontline},
		{"GET /counter/customers", s.customers, frontline},
		{"POST /counter/decisions", s.decide, frontline},
		{"GET /counter/decisions/{id}", s.decisionPage, frontline},
		{"POST /counter/decisions/{id}/exception", s.exception, frontline},
		{"GET /counter/approvals/{id}", s.approvalPage, frontline},
		{"GET /counter/approvals/{id}/events", s.approvalEvents, frontline},
		{"POST /counter/acts/{id}/reaction", s.reaction, frontline},
		{"POST /counter/refusals", s.refusal, frontline},

		// The supervisor's inbox (inbox.go).
		{"GET /inbox", s.inbox, inboxAccess},
		{"GET /inbox/events", s.inboxEvents, inboxAccess},
		{"POST /inbox/approvals/{id}/answer", s.answer, inboxAccess},
		// The manager's desk: people and the policy editor (desk.go,
		// desk_policy.go).
		{"GET /desk/people", s.people, manager},
		{"POST /desk/teams", s.addTeam, manager},
		{"GET /desk/people/{id}", s.memberPage, manager},
		{"POST /desk/people/{id}", s.updateMember, manager},
		{"POST /desk/people/{id}/password", s.resetPassword, manager},
		{"POST /desk/people/{id}/active", s.setActive, manager},
		{"GET /desk/policy", s.policyPage, manager},
		{"POST /desk/policy/check", s.checkPolicy, manager},
		{"POST /desk/policy", s.publishPolicy, manager},
		{"GET /desk/policy/history", s.policyHistory, manager},
		{"POST /desk/invitations", s.invite, manager},
		{"GET /invite/{token}", s.invitePage, public},
		{"POST /invite/{token}", s.acceptInvite, public},
		// The manager's desk, second half (desk2): today at a glance,
		// webhooks and deliveries, the audit trail and its chain check.
		{"GET /desk/today", s.today, margen.AccessManager},
		{"GET /desk/webhooks", s.webhooksPage, margen.AccessManager},
		{"POST /desk/webhooks", s.createWebhook, margen.AccessManager},
		{"GET /desk/webhooks/{id}", s.webhookPage, margen.AccessManager},
		{"POST /desk/webhooks/{id}/disable", s.disableWebhook, margen.AccessManager},
		{"GET /desk/deliveries/{id}", s.deliveryPage, margen.AccessManager},
		{"POST /desk/deliveries/{id}/replay", s.replayDelivery, margen.AccessManager},
		{"GET /desk/audit", s.auditPage, margen.AccessManager},
		{"GET /desk/audit/check", s.chainStatus, margen.AccessManager},
		{"POST /desk/audit/check", s.checkChain, margen.AccessManager},
		// The manager's desk: backups, imports and exports (backups.go,
		// imports.go).
		{"GET /desk/backups", s.backupsPage, manager},
		{"POST /desk/backups", s.backupNow, manager},
		{"GET /desk/imports", s.importsPage, manager},
		{"POST /desk/imports", s.upload, manager},
		{"GET /desk/imports/{id}", s.uploadPage, manager},
		{"POST /desk/imports/{id}/confirm", s.confirmUpload, manager},
		{"GET /desk/exports", s.exportDownload, manager},
		// A customer's file, export and erasure (privacy.go).
		{"GET /desk/customers", s.customersPage, manager},
		{"GET /desk/customers/{id}", s.customerPage, manager},
		{"GET /desk/customers/{id}/export", s.customerExport, manager},
		{"GET /desk/customers/{id}/erase", s.customerEraseConfirm, manager},
		{"POST /desk/customers/{id}/erase", s.customerErase, manager},
	}, s.surveyRoutes()...)
}

// New builds the web handler: every page, its assets and its middleware
// (security headers, cross-origin protection, sessions). Templates and
// assets are parsed here: a broken template fails New, not a request.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Sessions == nil || cfg.Engine == nil || cfg.Approvals == nil || cfg.Broker == nil || cfg.Catalog == nil {
		return nil, errors.New("web: Store, Sessions, Engine, Approvals, Broker and Catalog are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = margen.SystemClock{}
	}
	if cfg.Streams == nil {
		cfg.Streams = events.NewStreamLimits(0, 0)
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	a, err := loadAssets()
	if err != nil {
		return nil, err
	}
	v, err := parseViews(cfg.Catalog, a)
	if err != nil {
		return nil, err
	}
	s := &server{
		store: cfg.Store, engine: cfg.Engine, approvals: cfg.Approvals, broker: cfg.Broker,
		cat: cfg.Catalog, log: cfg.Logger, clock: cfg.Clock, shutdown: cfg.Shutdown, streams: cfg.Streams,
		backups: cfg.Backups, imports: cfg.Imports,
		views: v, assets: a, throttle: newThrottle(cfg.Clock), secure: !cfg.InsecureCookies, idle: cfg.SessionIdle,
		survey: newSurveys(cfg.Surveys),
	}
	sm := scs.New()
	sm.Store = cfg.Sessions
	// The idle timeout is enforced in withMember, not by scs: scs would
	// write the session on every request to move its idle deadline; ours
	// writes at most once a minute per session.
	sm.Lifetime = cfg.SessionLifetime
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Path = "/"
	sm.Cookie.Secure = s.secure
	sm.Cookie.Name = "margen_session"
	if s.secure {
		// __Host-: the browser keeps it only if Secure, for this host, path /.
		sm.Cookie.Name = "__Host-margen_session"
	}
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.fail(w, r, err)
	}
	s.sessions = sm

	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		h := http.Handler(rt.handler)
		if rt.minAccess != "" {
			h = s.requireMember(rt.minAccess, h)
		}
		mux.Handle(rt.pattern, h)
	}
	mux.HandleFunc("/", s.notFound)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusForbidden, "error.page.cross_origin")
	}))
	var h http.Handler = mux
	h = s.withMember(h)
	h = sm.LoadAndSave(h)
	h = cop.Handler(h)
	h = s.recoverPanics(h)
	h = securityHeaders(h)
	return h, nil
}

// home sends a visitor where they belong: the setup page on an empty
// database, the sign-in page, or the counter.
func (s *server) home(w http.ResponseWriter, r *http.Request) {
	any, err := s.store.AnyOrg(r.Context())
	switch {
	case err != nil:
		s.fail(w, r, err)
	case !any:
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
	case current(r).member == nil:
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	case margen.AccessAtLeast(current(r).member, margen.AccessManager):
		http.Redirect(w, r, "/desk/today", http.StatusSeeOther) // the manager's landing page
	default:
		http.Redirect(w, r, "/counter", http.StatusSeeOther)
	}
}
