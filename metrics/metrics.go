package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/margenhq/margen"
)

// Counts is what the gauges ask the store: how many approval requests are
// open and how many jobs of the durable queue are not finished (margen.Store
// has both).
type Counts interface {
	PendingApprovals(ctx context.Context) (int, error)
	PendingJobs(ctx context.Context, now time.Time) (int, error)
}

// Options configures New. Every field is optional.
type Options struct {
	// Counts feeds margen_pending_approvals and margen_job_queue_depth;
	// without it the two gauges are not registered.
	Counts Counts
	// CacheTTL is how long a count is reused before the store is asked
	// again (default 5s), so a scrape every second costs one query every
	// five seconds.
	CacheTTL time.Duration
	Clock    margen.Clock
	Logger   *slog.Logger
}

// Metrics is margen's set of Prometheus metrics in its own registry.
// Its methods are safe for concurrent use; a nil *Metrics ignores every
// call, so callers need not check whether metrics are enabled.
type Metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	failures  prometheus.Counter
	log       *slog.Logger
}

// Outcome labels of margen_decisions_total, registered at zero so the
// series exist before the first decision.
var outcomes = []string{margen.OutcomeAllowed, margen.OutcomeNeedsApproval, margen.OutcomeDenied}

// LatencyBuckets are the buckets of margen_approval_latency_seconds: from
// a few seconds at the counter to the hours an escalation to the owner may
// take.
var LatencyBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400}

// New builds the metrics and registers them, with the Go runtime and
// process collectors, in a private registry.
func New(opt Options) *Metrics {
	if opt.CacheTTL <= 0 {
		opt.CacheTTL = 5 * time.Second
	}
	if opt.Clock == nil {
		opt.Clock = margen.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "margen_decisions_total",
			Help: "Decisions recorded by this process, by outcome (allowed, needs_approval, denied).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "margen_approval_latency_seconds",
			Help:    "Time from an approval request to its answer (time to yes), by how it ended.",
			Buckets: LatencyBuckets,
		}, []string{"kind"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "margen_webhook_failures_total",
			Help: "Webhook delivery attempts that failed (transport error or non-2xx answer).",
		}),
		log: opt.Logger,
	}
	for _, o := range outcomes {
		m.decisions.WithLabelValues(o)
	}
	m.reg.MustRegister(m.decisions, m.latency, m.failures,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opt.Counts != nil {
		pa := &cachedCount{ttl: opt.CacheTTL, clock: opt.Clock, log: opt.Logger, name: "pending approvals", count: opt.Counts.PendingApprovals}
		jq := &cachedCount{ttl: opt.CacheTTL, clock: opt.Clock, log: opt.Logger, name: "pending jobs", count: func(ctx context.Context) (int, error) {
			return opt.Counts.PendingJobs(ctx, opt.Clock.Now())
		}}
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "margen_pending_approvals",
				Help: "Approval requests still waiting for an answer, in every organisation (refreshed at most every few seconds).",
			}, pa.value),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "margen_job_queue_depth",
				Help: "Jobs of the durable queue due and not yet done (refreshed at most every few seconds).",
			}, jq.value),
		)
	}
	return m
}

// Decision counts one recorded decision with its outcome.
func (m *Metrics) Decision(outcome string) {
	if m == nil || outcome == "" {
		return
	}
	m.decisions.WithLabelValues(outcome).Inc()
}

// ApprovalAnswered observes the time an approval request took to be
// answered. Its signature is that of approval.Options.Observe; the
// organisation is not a label (one series per tenant would not scale).
func (m *Metrics) ApprovalAnswered(org, kind string, seconds float64) {
	if m == nil || seconds < 0 {
		return
	}
	m.latency.WithLabelValues(kind).Observe(seconds)
}

// WebhookFailure counts one failed delivery attempt (webhook.Options.OnFailure).
func (m *Metrics) WebhookFailure() {
	if m == nil {
		return
	}
	m.failures.Inc()
}

// Registry is the private registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// cachedCount asks the store for a count at most once per ttl; between
// refreshes, and when the store fails, it answers the last value.
type cachedCount struct {
	ttl   time.Duration
	clock margen.Clock
	log   *slog.Logger
	name  string
	count func(context.Context) (int, error)

	mu  sync.Mutex
	at  time.Time
	val float64
}

func (c *cachedCount) value() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if !c.at.IsZero() && now.Sub(c.at) < c.ttl {
		return c.val
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.count(ctx)
	c.at = now // a failing store is asked again after ttl, not on every scrape
	if err != nil {
		c.log.Warn("metrics: counting failed", "what", c.name, "err", err)
		return c.val
	}
	c.val = float64(n)
	return c.val
}

// FailedBatches exports the decision engine's count of failed batch
// transactions (decision.Engine.FailedBatches) as
// margen_decision_batch_failures_total. Input validation keeps it at zero on
// a healthy database; a rising count means batches are being retried or
// split, which slows every organisation's decisions.
func (m *Metrics) FailedBatches(count func() int64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "margen_decision_batch_failures_total",
		Help: "Decision batch transactions that failed in this process (each attempt before a retry or a split).",
	}, func() float64 { return float64(count()) }))
}
