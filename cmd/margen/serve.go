package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/approval"
	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/events"
	"github.com/margenhq/margen/httpapi"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/importer"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/mailer"
	"github.com/margenhq/margen/metrics"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/web"
	"github.com/margenhq/margen/webhook"
)

// HTTP server limits. The API answers in milliseconds; the timeouts only
// protect the server from slow or stuck clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second // a policy upload of up to 1 MiB on a poor connection
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout bounds how long in-flight requests may take to finish
	// once a shutdown is asked for.
	shutdownTimeout = 20 * time.Second
	// purgeKeepJobs is how long done and cancelled jobs stay in the queue.
	purgeKeepJobs = 7 * 24 * time.Hour
	// opsLease is the lease of the runner of backups and imports: longer
	// than their jobs' timeouts (backup.JobTimeout, importer.JobTimeout).
	opsLease = 35 * time.Minute
)

func cmdServe(ctx context.Context, a *app, args []string) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fs := a.flags("serve", "", `Runs the HTTP server: the JSON API under /api/v1, the live event stream
(/api/v1/events), /healthz and /metrics; and the background workers: the
SLA worker (escalates or settles approval requests whose SLA has passed),
the webhook delivery worker and the event broker.

The database schema is migrated on start; an existing database is first
protected as by margen migrate (a verified copy of a SQLite database, the
path printed; on PostgreSQL it stops and prints the pg_dump command unless
--yes is given). A database whose schema is newer than this margen knows
is refused. The server prints one line,
"margen listening on http://ADDR", once it accepts connections (with the
real port when --addr asks for port 0). On SIGINT or SIGTERM it stops
accepting, ends the event streams, lets the requests in flight finish (up
to 20s), stops the workers, drains the decision engine and closes the
database.

/metrics (Prometheus) needs no token, so it answers only clients on this
machine unless --metrics-public is given. /healthz says the process is
alive; /readyz checks the database, the schema version and the workers.

With --backup-dir (SQLite only) it takes a verified online backup every
--backup-every into that directory and keeps the newest --backup-keep.
Backups are jobs of the durable queue: one per interval slot (at multiples
of --backup-every) whatever the number of processes, one at
start when the newest backup there is older than the interval, and one
when a manager asks for it on the desk's Backups page.

Example:
  margen serve --addr 127.0.0.1:8080 --db ./margen.db
  margen serve --db /var/lib/margen/margen.db --backup-dir /var/lib/margen/backups --backup-every 6h
  MARGEN_DB=postgres://margen:secret@db/margen margen serve --addr :8080`)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on, host:port (env MARGEN_ADDR)")
	fs.dbFlag(&cfg)
	fs.DurationVar(&cfg.SLAEvery, "sla-every", cfg.SLAEvery, "how often the SLA worker looks for overdue approval requests (env MARGEN_SLA_EVERY)")
	fs.DurationVar(&cfg.IdempotencyTTL, "idempotency-ttl", cfg.IdempotencyTTL, "how long the first answer to an Idempotency-Key is replayed (env MARGEN_IDEMPOTENCY_TTL)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "how long a decision may wait for the database before it is refused with 503 busy (env MARGEN_WRITE_TIMEOUT)")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", cfg.DebugAddr, "private address (loopback or private IP) for /debug/pprof and /metrics; off when empty (env MARGEN_DEBUG_ADDR)")
	fs.BoolVar(&cfg.WebhookAllowPrivate, "webhook-allow-private", cfg.WebhookAllowPrivate, "let webhooks deliver to loopback and private addresses (env MARGEN_WEBHOOK_ALLOW_PRIVATE)")
	fs.BoolVar(&cfg.MetricsPublic, "metrics-public", cfg.MetricsPublic, "serve /metrics to any client, not only this machine (env MARGEN_METRICS_PUBLIC)")
	insecure := fs.Bool("insecure-cookies", false, "send the web session cookie without Secure, for plain-HTTP local use only (env MARGEN_COOKIES=insecure)")
	secure := fs.Bool("secure-cookies", false, "send the web session cookie with Secure even on loopback, e.g. behind a TLS proxy on this host (env MARGEN_COOKIES=secure)")
	fs.DurationVar(&cfg.SessionIdle, "session-idle", cfg.SessionIdle, "end a web session unused for this long (env MARGEN_SESSION_IDLE)")
	fs.DurationVar(&cfg.SessionLifetime, "session-lifetime", cfg.SessionLifetime, "end any web session this long after sign-in (env MARGEN_SESSION_LIFETIME)")
	fs.Float64Var(&cfg.RateToken, "rate-limit-token", cfg.RateToken, "API requests per second allowed per token, 0 for no limit (env MARGEN_RATE_LIMIT_TOKEN)")
	fs.IntVar(&cfg.RateTokenBurst, "rate-limit-token-burst", cfg.RateTokenBurst, "API requests a token may make at once (env MARGEN_RATE_LIMIT_TOKEN_BURST)")
	fs.Float64Var(&cfg.RateAddress, "rate-limit-address", cfg.RateAddress, "API requests per second allowed per client address, 0 for no limit (env MARGEN_RATE_LIMIT_ADDRESS)")
	fs.IntVar(&cfg.RateAddressBurst, "rate-limit-address-burst", cfg.RateAddressBurst, "API requests a client address may make at once (env MARGEN_RATE_LIMIT_ADDRESS_BURST)")
	fs.IntVar(&cfg.DBMaxConns, "db-max-conns", cfg.DBMaxConns, "PostgreSQL connections this process may open (env MARGEN_DB_MAX_CONNS)")
	fs.DurationVar(&cfg.DBConnWait, "db-conn-wait", cfg.DBConnWait, "how long a request waits for a free database connection before it is answered 503 (env MARGEN_DB_CONN_WAIT)")
	fs.IntVar(&cfg.StreamsPerMember, "max-streams-per-member", cfg.StreamsPerMember, "event streams one member may hold open on this process (env MARGEN_MAX_STREAMS_PER_MEMBER)")
	fs.IntVar(&cfg.StreamsPerOrg, "max-streams-per-org", cfg.StreamsPerOrg, "event streams one organisation may hold open on this process (env MARGEN_MAX_STREAMS_PER_ORG)")
	fs.DurationVar(&cfg.SurveyExpiry, "survey-expiry", cfg.SurveyExpiry, "how long a survey link can be answered (env MARGEN_SURVEY_EXPIRY)")
	fs.IntVar(&cfg.SurveyPointPerHour, "survey-point-per-hour", cfg.SurveyPointPerHour, "answers a standing QR code takes per hour; more are refused and counted (env MARGEN_SURVEY_POINT_PER_HOUR)")
	fs.DurationVar(&cfg.SurveyDeviceEvery, "survey-device-every", cfg.SurveyDeviceEvery, "how often one device may answer one standing QR code (env MARGEN_SURVEY_DEVICE_EVERY)")
	fs.IntVar(&cfg.CaseCSATMax, "case-csat-max", cfg.CaseCSATMax, "a CSAT answer (1 to 5) at or below this opens a follow-up case; -1: none; the default for organisations that set none on /desk/survey (env MARGEN_CASE_CSAT_MAX)")
	fs.IntVar(&cfg.CaseNPSMax, "case-nps-max", cfg.CaseNPSMax, "an NPS answer (0 to 10) at or below this opens a follow-up case, 1 to 10; -1: none; the default for organisations that set none on /desk/survey (env MARGEN_CASE_NPS_MAX)")
	fs.DurationVar(&cfg.CaseSLA, "case-sla", cfg.CaseSLA, "how long a low survey answer's follow-up case waits at each step before it escalates one step up the approval chain (supervisor, the route's escalate_to, ..., owners); the default for organisations that set none on /desk/survey (env MARGEN_CASE_SLA)")
	fs.logFlags(&cfg)
	fs.StringVar(&cfg.BackupDir, "backup-dir", cfg.BackupDir, "directory for scheduled backups of a SQLite database, and for the copy taken before an upgrade (env MARGEN_BACKUP_DIR)")
	fs.DurationVar(&cfg.BackupEvery, "backup-every", cfg.BackupEvery, "interval between scheduled backups, at least 1m (env MARGEN_BACKUP_EVERY)")
	fs.IntVar(&cfg.BackupKeep, "backup-keep", cfg.BackupKeep, "how many scheduled backups to keep (env MARGEN_BACKUP_KEEP)")
	fs.smtpFlags(&cfg)
	yes := fs.Bool("yes", false, "upgrade a PostgreSQL database without stopping to ask for a backup first")
	if _, err := fs.parse(args, 0); err != nil {
		return err
	}
	if !validRate(cfg.RateToken) || !validRate(cfg.RateAddress) {
		return &usageError{"--rate-limit-token and --rate-limit-address must be 0 or a positive number of requests per second", fs.usage}
	}
	if cfg.RateTokenBurst < 1 || cfg.RateAddressBurst < 1 {
		return &usageError{"--rate-limit-token-burst and --rate-limit-address-burst must be at least 1", fs.usage}
	}
	if cfg.SLAEvery <= 0 {
		return &usageError{"--sla-every must be a positive duration, like 1s", fs.usage}
	}
	switch {
	case *insecure && *secure:
		return &usageError{"--insecure-cookies and --secure-cookies exclude each other", fs.usage}
	case *insecure:
		cfg.Cookies = "insecure"
	case *secure:
		cfg.Cookies = "secure"
	}
	if cfg.SessionIdle <= 0 || cfg.SessionLifetime <= 0 {
		return &usageError{"--session-idle and --session-lifetime must be positive durations, like 8h", fs.usage}
	}
	if cfg.DBMaxConns <= 0 || cfg.DBConnWait <= 0 || cfg.StreamsPerMember <= 0 || cfg.StreamsPerOrg <= 0 {
		return &usageError{"--db-max-conns, --db-conn-wait, --max-streams-per-member and --max-streams-per-org must be positive", fs.usage}
	}
	if cfg.SurveyExpiry <= 0 || cfg.SurveyDeviceEvery <= 0 || cfg.SurveyPointPerHour < 1 || cfg.CaseSLA <= 0 {
		return &usageError{"--survey-expiry, --survey-device-every and --case-sla must be positive durations and --survey-point-per-hour at least 1", fs.usage}
	}
	if !validCaseMax(cfg.CaseCSATMax, 5) || !validCaseMax(cfg.CaseNPSMax, 10) {
		return &usageError{"--case-csat-max must be 1 to 5 and --case-nps-max 1 to 10, or -1 to open no case on that scale", fs.usage}
	}
	if cfg.IdempotencyTTL <= 0 {
		return &usageError{"--idempotency-ttl must be a positive duration, like 24h", fs.usage}
	}
	if cfg.WriteTimeout <= 0 {
		return &usageError{"--write-timeout must be a positive duration, like 5s", fs.usage}
	}
	if cfg.DebugAddr != "" {
		if err := checkDebugAddr(cfg.DebugAddr); err != nil {
			return &usageError{err.Error(), fs.usage}
		}
	}
	if cfg.BackupEvery < minBackupEvery {
		return &usageError{"--backup-every must be at least 1m, like 6h", fs.usage}
	}
	if err := cfg.smtpConfig(os.ReadFile); err != nil {
		return &usageError{err.Error(), fs.usage}
	}
	if cfg.BackupKeep < 1 {
		return &usageError{"--backup-keep must be at least 1", fs.usage}
	}
	if cfg.BackupDir != "" && store.IsPostgres(cfg.DB) {
		return &usageError{"--backup-dir takes SQLite backups; back up PostgreSQL with pg_dump (see docs/operations.md)", fs.usage}
	}
	if err := beforeUpgrade(ctx, a.stdout, cfg, *yes); err != nil {
		return err
	}
	return serve(ctx, a, cfg)
}

// serveGCPercent is the garbage collector's pace while serving, unless GOGC
// is set in the environment. margen's live heap is small by design (about
// 6 MB serving decisions; lists and checks stream), so at Go's default of
// 100 the collector ran after every ~6 MB allocated: 130 collections per
// 20,000 decisions, 18-26% of the server's CPU. At 400 it runs a fifth as
// often for about 25 MB more heap (docs/benchmarks.md, "The collector's
// pace").
const serveGCPercent = 400

// setGCPace sets the collector's pace for serve and returns it (-1: left
// to GOGC).
func setGCPace(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		return -1
	}
	debug.SetGCPercent(serveGCPercent)
	return serveGCPercent
}

// atDefaultPace runs k's attempts with the collector at Go's default pace
// (100) when serve set its own (pace > 0, see setGCPace), and sets it back
// after. A ledger check streams millions of rows through a live heap of
// 25-40 MB, which at 400 lets the heap grow to ~190 MB: serve peaked at
// 232 MB during a check of a million decisions, 165 MB at 100. The check
// runner runs one check at a time.
func atDefaultPace(pace int, k jobs.Kind) jobs.Kind {
	if pace <= 0 {
		return k
	}
	run := k.Handler
	k.Handler = func(ctx context.Context, a *jobs.Attempt) error {
		debug.SetGCPercent(100)
		defer debug.SetGCPercent(pace)
		return run(ctx, a)
	}
	return k
}

func serve(ctx context.Context, a *app, cfg config) (err error) {
	log := cfg.logger(a.stderr)
	gogc, pace := a.getenv("GOGC"), setGCPace(a.getenv)
	if pace > 0 {
		gogc = fmt.Sprint(pace)
	}
	log.Info("margen starting", "version", versionString(), "config", cfg, "gogc", gogc)

	cat, err := i18n.New()
	if err != nil {
		return fmt.Errorf("message catalogue: %w", err)
	}
	key, err := loadAuditKey(cfg, log, true)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DB, store.Options{Migrate: true, Logger: log, AuditKey: key,
		MaxConns: cfg.DBMaxConns, ConnWait: cfg.DBConnWait})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close database: %w", cerr)
		}
	}()
	clock := margen.SystemClock{}
	// The broker follows the audit trail; the engine wakes it after each
	// committed batch so live streams see decisions at once.
	broker := events.NewBroker(st, events.Options{Clock: clock, Logger: log})
	engine := decision.New(st, decision.Options{Logger: log, Committed: broker.Notify, WriteTimeout: cfg.WriteTimeout})
	// Runs after the HTTP server has stopped (defers run in reverse order),
	// so no handler can queue a decision on a closed engine.
	defer engine.Close()

	// The background work: the event broker (the live stream), the SLA
	// worker, the webhook dispatcher and the job runner. They share one context that
	// is cancelled after the HTTP server has stopped, so no handler talks to
	// a stopped worker; the defer runs before engine.Close and st.Close.
	met := metrics.New(metrics.Options{Counts: st, Clock: clock, Logger: log})
	met.FailedBatches(engine.FailedBatches)
	approvals := approval.New(st, engine, approval.Options{Clock: clock, Logger: log,
		Notify: broker.Notify, Observe: met.ApprovalAnswered})
	deliveries := webhook.NewWorker(st, webhook.Options{Clock: clock, Logger: log, OnFailure: met.WebhookFailure,
		AllowPrivate: cfg.WebhookAllowPrivate})
	// The durable job queue runs every kind of background job; webhook
	// deliveries are jobs enqueued with their deliveries.
	runner := jobs.New(st, jobs.Options{Clock: clock, Logger: log})
	runner.Register(margen.JobWebhookDelivery, deliveries.Kind())
	// Hourly: expired idempotency records, and jobs finished a week ago.
	runner.Register(margen.JobPurge, jobs.Purge(st, purgeKeepJobs, time.Hour))
	// Ledger checks stream every row of an organisation for minutes: a
	// runner of their own, with a lease that long, one check at a time.
	checks := jobs.New(st, jobs.Options{Clock: clock, Logger: log, Lease: jobs.LedgerCheckLease, Concurrency: 1,
		Poll: 5 * time.Second})
	checks.Register(margen.JobLedgerCheck, atDefaultPace(pace, jobs.LedgerCheck(st, key, clock)))
	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	run := map[string]func(context.Context){
		"events":   broker.Run,
		"sla":      func(ctx context.Context) { approvals.RunSLA(ctx, cfg.SLAEvery) },
		"webhooks": deliveries.Run,
		"jobs":     runner.Run,
		"checks":   checks.Run,
		"sessions": func(ctx context.Context) { st.Sessions().RunSweep(ctx, 10*time.Minute) },
	}
	// Backups and imports from the desk run on a runner of their own, with
	// a lease long enough for a large database's copy and verification (a
	// job's timeout must fit in its runner's lease).
	long := jobs.New(st, jobs.Options{Clock: clock, Logger: log, Lease: opsLease, Concurrency: 2})
	imports := importer.NewTracker()
	long.Register(margen.JobImport, importer.Kind(st, imports))
	// Hourly: unconfirmed uploads expire after a day, uploads go after a week.
	runner.Register(margen.JobPurgeUploads, importer.PurgeKind(st))
	run["ops jobs"] = long.Run
	// Survey links by email, when SMTP is configured: jobs enqueued with
	// their links.
	emailSent := met.Email() // margen_email_total, at 0 when email is off
	if cfg.SMTP.Enabled() {
		mails := mailer.NewWorker(st, mailer.NewSMTP(cfg.SMTP), cat, cfg.SMTP.PublicURL,
			mailer.Options{Clock: clock, Logger: log, OnResult: emailSent})
		runner.Register(margen.JobSurveyEmail, mails.Kind())
	}
	// Scheduled backups: a periodic job of the queue (one per interval slot
	// whatever the number of processes), and one at start when the newest
	// backup is older than the interval.
	var backups *backup.Scheduler
	if cfg.BackupDir != "" {
		backups = backup.NewScheduler(backup.Options{DSN: cfg.DB, Dir: cfg.BackupDir, Every: cfg.BackupEvery,
			Keep: cfg.BackupKeep, Clock: clock, Log: log, AuditKey: key, OnSuccess: met.BackupSucceeded, OnFailure: met.BackupFailed})
		long.Register(margen.JobBackup, backups.Kind())
		if _, err := backups.CatchUp(ctx, st); err != nil {
			stopWorkers()
			return fmt.Errorf("schedule a backup: %w", err)
		}
	}
	alive := newWorkerSet()
	for name, run := range run {
		alive.start(name)
		workers.Go(func() {
			defer alive.stop(name)
			run(wctx)
			log.Debug("worker stopped", "worker", name)
		})
	}
	defer func() {
		stopWorkers()
		workers.Wait()
	}()

	// Closed when the HTTP server starts shutting down: ends the event
	// streams, which would otherwise keep Shutdown waiting.
	streamsDone := make(chan struct{})
	var endStreams sync.Once
	tokenLimit, addrLimit := cfg.limiters()
	// One count of live streams for both doors: a member's API streams and
	// open web pages share --max-streams-per-member.
	streams := events.NewStreamLimits(cfg.StreamsPerMember, cfg.StreamsPerOrg)
	insecureCookies := cfg.Cookies == "insecure" || cfg.Cookies == "auto" && loopbackOnly(cfg.Addr)
	api, err := httpapi.New(httpapi.Config{Store: st, Engine: engine, Catalog: cat, Logger: log,
		Clock: clock, Version: versionString(),
		Approvals: approvals, Broker: broker, Shutdown: streamsDone,
		Streams: streams,
		Metrics: met, MetricsPublic: cfg.MetricsPublic,
		TokenLimit: tokenLimit, AddressLimit: addrLimit, IdempotencyTTL: cfg.IdempotencyTTL,
		Ready: []httpapi.ReadyCheck{
			{Name: "migrations", Check: st.SchemaCurrent},
			{Name: "workers", Check: func(context.Context) error { return alive.check() }},
		},
		Backups: backups.Last,
		// Links made through the API are answered on the web's /s/{token}:
		// the same key, expiry and scheme.
		Surveys: httpapi.SurveyConfig{Key: key.SurveyKey(), Expiry: cfg.SurveyExpiry, HTTPS: !insecureCookies,
			PublicURL: cfg.SMTP.PublicURL, Email: cfg.SMTP.Enabled(),
			Cases: margen.CaseRule{SLA: cfg.CaseSLA, CSATMax: cfg.CaseCSATMax, NPSMax: cfg.CaseNPSMax}}})
	if err != nil {
		return err
	}
	if insecureCookies {
		log.Warn("web: session cookies without Secure: for plain-HTTP use on this machine only; behind TLS use --secure-cookies",
			"addr", cfg.Addr, "cookies", cfg.Cookies)
	}
	pages, err := web.New(web.Config{Store: st, Sessions: st.Sessions(), Engine: engine, Approvals: approvals,
		Broker: broker, Catalog: cat, Logger: log, Clock: clock, InsecureCookies: insecureCookies,
		SessionIdle: cfg.SessionIdle, SessionLifetime: cfg.SessionLifetime, Shutdown: streamsDone, Streams: streams,
		Surveys: web.SurveyOptions{Expiry: cfg.SurveyExpiry, Key: key.SurveyKey(), Refused: met.SurveyRefused(),
			Email: cfg.SMTP.Enabled(), PublicURL: cfg.SMTP.PublicURL,
			Limits: margen.SurveyLimits{PointPerHour: cfg.SurveyPointPerHour, DeviceEvery: cfg.SurveyDeviceEvery,
				Cases: margen.CaseRule{SLA: cfg.CaseSLA, CSATMax: cfg.CaseCSATMax, NPSMax: cfg.CaseNPSMax}}},
		Backups: backups, Imports: imports})
	if err != nil {
		return err
	}
	h := doors(api, pages)
	var lc net.ListenConfig
	if cfg.DebugAddr != "" {
		dln, err := lc.Listen(ctx, "tcp", cfg.DebugAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.DebugAddr, err)
		}
		dsrv := debugServer(met.Handler())
		go dsrv.Serve(dln)
		// Profiles in progress are cut short: nothing depends on them.
		defer dsrv.Close()
		log.Info("debug listening", "addr", dln.Addr().String())
		fmt.Fprintf(a.stdout, "margen debug listening on http://%s\n", dln.Addr())
	}
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests do not inherit ctx: cancelling it starts a graceful
		// shutdown, which must let them finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(func() { endStreams.Do(func() { close(streamsDone) }) })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "engine", st.Engine())
	fmt.Fprintf(a.stdout, "margen listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		// The listener failed on its own.
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: requests still running after %s: %w", shutdownTimeout, err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// doors puts the two doors on one address: the JSON API owns /api/ and
// the other paths of its route table (/healthz, /readyz, /metrics...);
// every other path is a web page.
func doors(api, pages http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	seen := map[string]bool{"/api/": true}
	for _, pattern := range httpapi.Routes() {
		_, path, _ := strings.Cut(pattern, " ")
		if !strings.HasPrefix(path, "/api/") && !seen[path] {
			seen[path] = true
			mux.Handle(path, api)
		}
	}
	mux.Handle("/", pages)
	return mux
}

// loopbackOnly reports whether addr listens on this machine only
// (127.0.0.0/8, ::1 or localhost), where a browser talks plain HTTP and a
// Secure cookie would be refused.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// workerSet knows which background workers are running, for /readyz: a
// worker that returned before the shutdown has stopped doing its job.
type workerSet struct {
	mu      sync.Mutex
	running map[string]bool
}

func newWorkerSet() *workerSet { return &workerSet{running: map[string]bool{}} }

func (w *workerSet) start(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running[name] = true
}

func (w *workerSet) stop(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running[name] = false
}

// check returns an error naming the workers that are not running.
func (w *workerSet) check() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var down []string
	for name, ok := range w.running {
		if !ok {
			down = append(down, name)
		}
	}
	if len(down) > 0 {
		slices.Sort(down)
		return fmt.Errorf("workers not running: %s", strings.Join(down, ", "))
	}
	return nil
}
