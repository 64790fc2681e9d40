package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/metrics"
	"github.com/margenhq/margen/ratelimit"
)

// Config is what the API needs; Store, Engine and Catalog are required.
type Config struct {
	Store   Store
	Engine  *decision.Engine
	Catalog *i18n.Catalog
	Logger  *slog.Logger // default slog.Default()
	Clock   margen.Clock // default margen.SystemClock
	Version string       // reported by the OpenAPI document's server and /healthz

	// AuthCacheTTL is how long a token lookup is trusted without asking the
	// store again (default 5s; negative disables the cache). It is also the
	// lag after which a revoked token or a deactivated member is refused.
	AuthCacheTTL time.Duration

	// Approvals answers, lists and routes approval requests; without it the
	// approval and exception routes and the event stream answer 503.
	Approvals *approval.Service
	// Broker feeds GET /api/v1/events; without it the stream answers 503.
	Broker *events.Broker
	// Shutdown, closed when the server begins shutting down, ends the event
	// streams so a graceful shutdown does not wait for them.
	Shutdown <-chan struct{}
	// Heartbeat is how often an idle event stream sends a comment line
	// (default 15s).
	Heartbeat time.Duration
	// Streams, when set, bounds the live streams of this door and of the
	// web pages together (else StreamsPerMember and StreamsPerOrg do).
	Streams *events.StreamLimits
	// StreamsPerMember and StreamsPerOrg bound the event streams open at
	// once in this process, per member and per organisation (defaults 8
	// and 500); beyond them GET /api/v1/events answers 429.
	StreamsPerMember int
	StreamsPerOrg    int

	// Metrics, when set, is served at GET /metrics and counts decisions.
	Metrics *metrics.Metrics
	// MetricsPublic serves /metrics to any client; by default only to
	// clients on this machine that did not come through a proxy.
	MetricsPublic bool

	// TokenLimit and AddressLimit limit the rate of /api requests per
	// bearer token and per client address (429 beyond); nil is no limit.
	TokenLimit   *ratelimit.Limiter
	AddressLimit *ratelimit.Limiter
	// IdempotencyTTL is how long an Idempotency-Key's answer is replayed
	// (default 24h); after that the key is free again.
	IdempotencyTTL time.Duration
	// Ready lists the checks of GET /readyz beside the database ping
	// (migrations current, workers running); each returns nil when ready.
	Ready []ReadyCheck
	// Backups reports the last scheduled backup for GET
	// /api/v1/backups/last; nil means backups are not configured.
	Backups func() backup.Status
	// Surveys configure POST /api/v1/acts/{id}/survey-link; without a key
	// it answers 503.
	Surveys SurveyConfig
}

// SurveyConfig is what the API needs to make survey links: the key of the
// tokens (margen.AuditKey.SurveyKey, the same as the web's, which answers
// them), how long a link lasts and whether its URL is https.
type SurveyConfig struct {
	Key    []byte
	Expiry time.Duration // <= 0: margen.DefaultSurveyExpiry
	HTTPS  bool          // https even when the request did not come over TLS (behind a TLS proxy)
	// Cases is the server's follow-up rule (the flags): what
	// GET /api/v1/case-settings reports for what an organisation left unset.
	Cases margen.CaseRule
	// PublicURL, when set, is the absolute base of survey URLs (else the
	// request's scheme and host).
	PublicURL string
	// Email accepts an email address to send the link to (SMTP is
	// configured).
	Email bool
}

// ReadyCheck is one named readiness check.
type ReadyCheck struct {
	Name  string
	Check func(context.Context) error
}

// Limits on request bodies.
const (
	maxJSONBody   = 64 << 10
	maxPolicyBody = 1 << 20 // policy.MaxPolicySize
	defaultLimit  = 50
	maxLimit      = 200
)

//go:embed openapi.json
var openapiDoc []byte

type server struct {
	store   Store
	engine  *decision.Engine
	cat     *i18n.Catalog
	log     *slog.Logger
	clock   margen.Clock
	version string
	auth    *tokenCache
	lookups singleflight.Group // token hash -> a lookup in progress

	approvals *approval.Service
	broker    *events.Broker
	shutdown  <-chan struct{}
	heartbeat time.Duration
	streams   *events.StreamLimits

	metrics        *metrics.Metrics
	metricsHandler http.Handler
	metricsPublic  bool

	ready   []ReadyCheck
	backups func() backup.Status

	surveyTokens *margen.SurveyTokens // nil: no survey key configured
	surveyExpiry time.Duration
	surveyHTTPS  bool
	caseRule     margen.CaseRule
	surveyBase   string
	surveyEmail  bool

	// inflight holds the idempotency keys being processed in this process,
	// so a concurrent duplicate is refused (409) instead of racing: the one
	// in-flight guard of every idempotent write, decisions included.
	inflightMu sync.Mutex
	inflight   map[margen.IdemKey]struct{}
	idemTTL    time.Duration

	tokenLimit *ratelimit.Limiter
	addrLimit  *ratelimit.Limiter
}

// route is one entry of the route table. minAccess is the least access
// level that may call it ("" for public routes that need no token).
type route struct {
	pattern   string
	handler   func(http.ResponseWriter, *http.Request)
	minAccess string
}

func (s *server) routes() []route {
	const (
		public     = ""
		frontline  = margen.AccessFrontline
		supervisor = margen.AccessSupervisor
		manager    = margen.AccessManager
	)
	return []route{
		{"GET /healthz", s.healthz, public},
		{"GET /readyz", s.readyz, public},
		{"GET /metrics", s.serveMetrics, public},
		{"GET /api/v1/openapi.json", s.openapi, public},
		{"GET /api/v1/me", s.me, frontline},
		{"DELETE /api/v1/me/token", s.revokeOwnToken, frontline},

		{"POST /api/v1/decisions", s.createDecision, frontline},
		{"POST /api/v1/decisions/explain", s.explainDecision, frontline},
		{"GET /api/v1/decisions", s.listDecisions, frontline},
		{"GET /api/v1/decisions/{id}", s.getDecision, frontline},

		{"GET /api/v1/acts", s.listActs, frontline},
		{"GET /api/v1/acts/{id}", s.getAct, frontline},
		{"POST /api/v1/acts/{id}/reaction", s.createReaction, frontline},
		{"GET /api/v1/acts/{id}/survey-answers", s.actSurveyAnswers, frontline},
		{"POST /api/v1/acts/{id}/survey-link", s.createSurveyLink, frontline},
		{"GET /api/v1/survey-answers", s.listSurveyAnswers, frontline},
		{"GET /api/v1/case-settings", s.getCaseSettings, manager},
		{"PUT /api/v1/case-settings", s.putCaseSettings, manager},
		{"GET /api/v1/cases", s.listCases, frontline},
		{"GET /api/v1/cases/{id}", s.getCase, frontline},
		{"POST /api/v1/cases/{id}/close", s.closeCase, frontline},

		{"GET /api/v1/refusals", s.listRefusals, frontline},
		{"GET /api/v1/refusals/{id}", s.getRefusal, frontline},
		{"POST /api/v1/refusals", s.createRefusal, frontline},

		{"GET /api/v1/budgets", s.listBudgets, frontline},

		{"GET /api/v1/approvals/pending", s.pendingApprovals, frontline},
		{"GET /api/v1/requests", s.myRequests, frontline},
		{"GET /api/v1/approvals", s.listApprovals, supervisor},
		{"GET /api/v1/approvals/{id}", s.getApproval, frontline},
		{"POST /api/v1/approvals/{id}/approve", s.approveApproval, frontline},
		{"POST /api/v1/approvals/{id}/reject", s.rejectApproval, frontline},
		{"POST /api/v1/exceptions", s.requestException, frontline},
		{"GET /api/v1/events", s.streamEvents, frontline},

		{"POST /api/v1/webhooks", s.createWebhook, manager},
		{"GET /api/v1/webhooks", s.listWebhooks, manager},
		{"GET /api/v1/webhooks/{id}", s.getWebhook, manager},
		{"DELETE /api/v1/webhooks/{id}", s.deleteWebhook, manager},
		{"GET /api/v1/webhooks/{id}/deliveries", s.listDeliveries, manager},
		{"GET /api/v1/deliveries/{id}", s.getDelivery, manager},
		{"POST /api/v1/deliveries/{id}/replay", s.replayDelivery, manager},

		{"POST /api/v1/policies", s.publishPolicy, manager},
		{"POST /api/v1/policies/check", s.checkPolicy, manager},
		{"GET /api/v1/policies", s.listPolicies, frontline},
		{"GET /api/v1/policies/active", s.activePolicy, frontline},
		{"GET /api/v1/policies/{version}", s.getPolicy, frontline},

		{"GET /api/v1/audit", s.listAudit, manager},
		{"POST /api/v1/imports/{kind}", s.importFile, manager},
		{"GET /api/v1/exports/{kind}", s.exportRecords, manager},
		{"GET /api/v1/customers/{id}/export", s.exportCustomer, manager},
		{"POST /api/v1/customers/{id}/erase", s.eraseCustomer, manager},
		{"GET /api/v1/ledger/check", s.checkLedger, manager},
		{"POST /api/v1/ledger/check", s.runLedgerCheck, manager},
		{"GET /api/v1/backups/last", s.lastBackup, manager},
	}
}

// Routes returns the patterns of the route table ("POST /api/v1/decisions"),
// for documentation and for the test that keeps openapi.json complete.
func Routes() []string {
	var out []string
	for _, r := range (&server{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

// New builds the API handler.
//
// CSRF: every /api route authenticates with a bearer token that a browser
// never attaches on its own (no cookies, no ambient credentials), so a
// cross-site request cannot act as a member and http.CrossOriginProtection
// is not needed here. It will be needed by the cookie-session HTML routes.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Catalog == nil {
		return nil, errors.New("httpapi: Store, Engine and Catalog are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = margen.SystemClock{}
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = margen.DefaultIdempotencyTTL
	}
	ttl := cfg.AuthCacheTTL
	if ttl == 0 {
		ttl = 5 * time.Second
	}
	s := &server{
		store:    cfg.Store,
		engine:   cfg.Engine,
		cat:      cfg.Catalog,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		version:  cfg.Version,
		auth:     newTokenCache(ttl),
		inflight: make(map[margen.IdemKey]struct{}),
		idemTTL:  cfg.IdempotencyTTL,

		tokenLimit: cfg.TokenLimit,
		addrLimit:  cfg.AddressLimit,

		approvals:     cfg.Approvals,
		broker:        cfg.Broker,
		shutdown:      cfg.Shutdown,
		heartbeat:     cfg.Heartbeat,
		metrics:       cfg.Metrics,
		metricsPublic: cfg.MetricsPublic,
		ready:         cfg.Ready,
		backups:       cfg.Backups,

		surveyExpiry: cfg.Surveys.Expiry,
		surveyHTTPS:  cfg.Surveys.HTTPS,
		caseRule:     cfg.Surveys.Cases,
		surveyBase:   cfg.Surveys.PublicURL,
		surveyEmail:  cfg.Surveys.Email,
	}
	if len(cfg.Surveys.Key) > 0 {
		s.surveyTokens = margen.NewSurveyTokens(cfg.Surveys.Key)
	}
	if s.surveyExpiry <= 0 {
		s.surveyExpiry = margen.DefaultSurveyExpiry
	}
	if s.heartbeat <= 0 {
		s.heartbeat = defaultHeartbeat
	}
	s.streams = cfg.Streams
	if s.streams == nil {
		s.streams = events.NewStreamLimits(cfg.StreamsPerMember, cfg.StreamsPerOrg)
	}
	if s.metrics != nil {
		s.metricsHandler = s.metrics.Handler()
	}
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		h := http.Handler(http.HandlerFunc(rt.handler))
		if hasJSONBody(rt.pattern) {
			h = s.requireJSON(h)
		}
		if rt.minAccess != "" {
			h = s.authenticate(rt.minAccess, h)
		}
		h = s.checkInput(rt.pattern, h)
		mux.Handle(rt.pattern, h)
	}
	var h http.Handler = s.fallback(mux)
	h = s.recoverPanics(h)
	h = s.rateLimit(h)
	h = s.limitHeaders(h)
	h = s.accessLog(h)
	h = securityHeaders(h)
	h = requestID(h)
	return h, nil
}

// healthz says the process is alive and serving HTTP; it asks nothing of
// the database (that is /readyz), so a database outage does not get a
// healthy process restarted.
func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}

// readyz says whether this process can serve: the database answers, and
// every configured check passes (migrations current, workers running).
// Failures are named but not detailed (the endpoint is public); the
// details go to the log.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := append([]ReadyCheck{{"database", s.store.Ping}}, s.ready...)
	results := make(map[string]string, len(checks))
	var failed []string
	for _, c := range checks {
		if err := c.Check(ctx); err != nil {
			s.log.Warn("readiness check failed", "request_id", reqID(r), "check", c.Name, "err", err)
			results[c.Name] = "failed"
			failed = append(failed, c.Name)
			continue
		}
		results[c.Name] = "ok"
	}
	if len(failed) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed, "checks": results})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": results})
}

// lastBackup is GET /api/v1/backups/last: the outcome of the server's last
// scheduled backup (the backups are of the whole installation, so every
// organisation's managers see the same; only times, size and the file's
// base name are shown).
func (s *server) lastBackup(w http.ResponseWriter, r *http.Request) {
	var st backup.Status
	if s.backups != nil {
		st = s.backups()
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(openapiDoc)
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	writeJSON(w, http.StatusOK, map[string]any{"member": st.member, "org": st.org})
}
