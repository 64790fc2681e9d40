package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/mailer"
	"github.com/margenhq/margen/ratelimit"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/web"
)

// config is the configuration shared by the commands: read once from the
// MARGEN_* environment, then overridden by the command's flags, validated,
// and passed down explicitly.
type config struct {
	DB        string     // SQLite path or postgres:// URL (MARGEN_DB, --db)
	Addr      string     // listen address of serve (MARGEN_ADDR, --addr)
	LogFormat string     // text or json (MARGEN_LOG_FORMAT)
	LogLevel  slog.Level // MARGEN_LOG_LEVEL

	// SLAEvery is how often serve's SLA worker looks for overdue approval
	// requests (MARGEN_SLA_EVERY, --sla-every).
	SLAEvery time.Duration
	// MetricsPublic serves /metrics to any client, not only to this
	// machine (MARGEN_METRICS_PUBLIC, --metrics-public).
	MetricsPublic bool
	// WebhookAllowPrivate lets webhooks deliver to loopback and private
	// addresses (MARGEN_WEBHOOK_ALLOW_PRIVATE, --webhook-allow-private).
	WebhookAllowPrivate bool
	// Cookies says how the web's session cookie is sent: "auto" (Secure,
	// except when listening on loopback only), "secure" or "insecure"
	// (MARGEN_COOKIES; --secure-cookies, --insecure-cookies).
	Cookies string
	// SessionIdle and SessionLifetime end web sessions unused for that
	// long, and any session that long after sign-in (MARGEN_SESSION_IDLE,
	// MARGEN_SESSION_LIFETIME).
	SessionIdle, SessionLifetime time.Duration

	// RateToken and RateAddress are the sustained /api requests per second
	// allowed per bearer token and per client address, 0 for no limit;
	// RateTokenBurst and RateAddressBurst the requests allowed at once
	// (MARGEN_RATE_LIMIT_TOKEN[_BURST], MARGEN_RATE_LIMIT_ADDRESS[_BURST]).
	RateToken        float64
	RateTokenBurst   int
	RateAddress      float64
	RateAddressBurst int
	// AuditKeyFile holds the audit key (MARGEN_AUDIT_KEY_FILE,
	// --audit-key-file); AuditKey is the key itself, hex or base64
	// (MARGEN_AUDIT_KEY), which wins over the file. See auditkey.go.
	AuditKeyFile string
	AuditKey     string
	// warn receives the warning of a newly generated audit key.
	warn io.Writer
	// DBMaxConns is the PostgreSQL pool size of this process
	// (MARGEN_DB_MAX_CONNS, --db-max-conns).
	DBMaxConns int
	// DBConnWait bounds how long a request waits for a free connection
	// before it is answered 503 busy (MARGEN_DB_CONN_WAIT, --db-conn-wait).
	DBConnWait time.Duration
	// StreamsPerMember and StreamsPerOrg bound the event streams open at
	// once on this process (MARGEN_MAX_STREAMS_PER_MEMBER,
	// MARGEN_MAX_STREAMS_PER_ORG, and the flags of the same names).
	StreamsPerMember int
	StreamsPerOrg    int
	// IdempotencyTTL is how long an Idempotency-Key's first answer is
	// replayed (MARGEN_IDEMPOTENCY_TTL, --idempotency-ttl).
	IdempotencyTTL time.Duration
	// WriteTimeout bounds how long a decision waits to be written before
	// it is refused as busy (MARGEN_WRITE_TIMEOUT, --write-timeout).
	WriteTimeout time.Duration
	// DebugAddr, when set, is a private listener for /debug/pprof and
	// /metrics (MARGEN_DEBUG_ADDR, --debug-addr).
	DebugAddr string
	// BackupDir is where serve takes scheduled backups and where serve and
	// migrate save a SQLite database before upgrading it (MARGEN_BACKUP_DIR,
	// --backup-dir; empty: no scheduled backups, and the pre-upgrade copy
	// goes next to the database file).
	BackupDir string
	// BackupEvery is the interval between scheduled backups
	// (MARGEN_BACKUP_EVERY, --backup-every).
	BackupEvery time.Duration
	// BackupKeep is how many scheduled backups are kept
	// (MARGEN_BACKUP_KEEP, --backup-keep).
	BackupKeep int
	// SurveyExpiry is how long a survey link can be answered
	// (MARGEN_SURVEY_EXPIRY, --survey-expiry); SurveyPointPerHour and
	// SurveyDeviceEvery limit a standing QR code's answers per hour and
	// per device (MARGEN_SURVEY_POINT_PER_HOUR, MARGEN_SURVEY_DEVICE_EVERY).
	SurveyExpiry       time.Duration
	SurveyPointPerHour int
	SurveyDeviceEvery  time.Duration
	// CaseSLA is how long a low answer's follow-up case waits before it
	// escalates to the owners (MARGEN_CASE_SLA, --case-sla).
	CaseSLA time.Duration
	// CaseCSATMax and CaseNPSMax are the scores at or below which an answer
	// opens a follow-up case (MARGEN_CASE_CSAT_MAX, --case-csat-max: 1 to 5;
	// MARGEN_CASE_NPS_MAX, --case-nps-max: 1 to 10); -1 opens none on that
	// scale.
	CaseCSATMax int
	CaseNPSMax  int
	// SMTP is the mail server survey links are sent through (off when its
	// host is empty) and the public URL the links start with:
	// MARGEN_SMTP_HOST, _PORT, _USER, _FROM, _TLS (none, starttls, tls),
	// the password only from MARGEN_SMTP_PASSWORD or the file named by
	// MARGEN_SMTP_PASSWORD_FILE (--smtp-password-file), and
	// MARGEN_PUBLIC_URL (--public-url).
	SMTP mailer.Config
	// SMTPPasswordFile holds the SMTP password (read at start).
	SMTPPasswordFile string
}

const (
	defaultDB       = "./margen.db"
	defaultAddr     = "127.0.0.1:8080"
	defaultSLAEvery = time.Second

	defaultRateToken        = 50
	defaultRateTokenBurst   = 100
	defaultRateAddress      = 100
	defaultRateAddressBurst = 200
	defaultStreamsPerMember = 8
	defaultStreamsPerOrg    = 500
	defaultBackupEvery      = 6 * time.Hour
	defaultBackupKeep       = 14
	// minBackupEvery keeps a mistyped interval ("6s") from filling the disk.
	minBackupEvery = time.Minute
)

// config reads the environment. Flags are applied on top by each command.
func (a *app) config() (config, error) {
	c := config{DB: defaultDB, Addr: defaultAddr, LogFormat: "text", LogLevel: slog.LevelInfo, SLAEvery: defaultSLAEvery,
		Cookies: "auto", SessionIdle: web.DefaultSessionIdle, SessionLifetime: web.DefaultSessionLifetime,
		SurveyExpiry: margen.DefaultSurveyExpiry, SurveyPointPerHour: margen.DefaultPointPerHour,
		SurveyDeviceEvery: margen.DefaultPointDeviceEvery, CaseSLA: margen.DefaultCaseSLA,
		CaseCSATMax: margen.DefaultCaseCSAT, CaseNPSMax: margen.DefaultCaseNPS,
		RateToken: defaultRateToken, RateTokenBurst: defaultRateTokenBurst,
		RateAddress: defaultRateAddress, RateAddressBurst: defaultRateAddressBurst,
		DBMaxConns: store.DefaultMaxConns, DBConnWait: store.DefaultConnWait,
		StreamsPerMember: defaultStreamsPerMember, StreamsPerOrg: defaultStreamsPerOrg,
		IdempotencyTTL: margen.DefaultIdempotencyTTL,
		WriteTimeout:   decision.DefaultWriteTimeout,
		BackupEvery:    defaultBackupEvery, BackupKeep: defaultBackupKeep}
	if v := a.getenv("MARGEN_DB"); v != "" {
		c.DB = v
	}
	c.AuditKeyFile, c.AuditKey, c.warn = a.getenv("MARGEN_AUDIT_KEY_FILE"), a.getenv("MARGEN_AUDIT_KEY"), a.stderr
	if v := a.getenv("MARGEN_ADDR"); v != "" {
		c.Addr = v
	}
	if v := a.getenv("MARGEN_LOG_FORMAT"); v != "" {
		c.LogFormat = strings.ToLower(v)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("MARGEN_LOG_FORMAT: %q is not a log format: use text or json", c.LogFormat)
	}
	if v := a.getenv("MARGEN_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return c, fmt.Errorf("MARGEN_LOG_LEVEL: %q is not a log level: use debug, info, warn or error", v)
		}
	}
	if v := a.getenv("MARGEN_SLA_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("MARGEN_SLA_EVERY: %q is not a positive duration: use e.g. 1s or 500ms", v)
		}
		c.SLAEvery = d
	}
	if v := a.getenv("MARGEN_IDEMPOTENCY_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("MARGEN_IDEMPOTENCY_TTL: %q is not a positive duration: use e.g. 24h", v)
		}
		c.IdempotencyTTL = d
	}
	c.DebugAddr = a.getenv("MARGEN_DEBUG_ADDR")
	if v := a.getenv("MARGEN_WRITE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("MARGEN_WRITE_TIMEOUT: %q is not a positive duration: use e.g. 5s or 500ms", v)
		}
		c.WriteTimeout = d
	}
	if v := a.getenv("MARGEN_WEBHOOK_ALLOW_PRIVATE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("MARGEN_WEBHOOK_ALLOW_PRIVATE: %q is not a boolean: use true or false", v)
		}
		c.WebhookAllowPrivate = b
	}
	c.BackupDir = a.getenv("MARGEN_BACKUP_DIR")
	if v := a.getenv("MARGEN_BACKUP_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < minBackupEvery {
			return c, fmt.Errorf("MARGEN_BACKUP_EVERY: %q is not a duration of at least 1m: use e.g. 6h", v)
		}
		c.BackupEvery = d
	}
	if v := a.getenv("MARGEN_SURVEY_POINT_PER_HOUR"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("MARGEN_SURVEY_POINT_PER_HOUR: %q is not a positive number of answers", v)
		}
		c.SurveyPointPerHour = n
	}
	for _, t := range []struct {
		env string
		max int
		dst *int
	}{{"MARGEN_CASE_CSAT_MAX", 5, &c.CaseCSATMax}, {"MARGEN_CASE_NPS_MAX", 10, &c.CaseNPSMax}} {
		if v := a.getenv(t.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || !validCaseMax(n, t.max) {
				return c, fmt.Errorf("%s: %q is not a threshold: use 1 to %d, or -1 to open no case on that scale", t.env, v, t.max)
			}
			*t.dst = n
		}
	}
	if v := a.getenv("MARGEN_BACKUP_KEEP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("MARGEN_BACKUP_KEEP: %q is not a positive number of backups", v)
		}
		c.BackupKeep = n
	}
	if v := a.getenv("MARGEN_METRICS_PUBLIC"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("MARGEN_METRICS_PUBLIC: %q is not a boolean: use true or false", v)
		}
		c.MetricsPublic = b
	}
	if v := a.getenv("MARGEN_COOKIES"); v != "" {
		if v != "auto" && v != "secure" && v != "insecure" {
			return c, fmt.Errorf("MARGEN_COOKIES: %q is not a cookie mode: use auto, secure or insecure", v)
		}
		c.Cookies = v
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"MARGEN_SESSION_IDLE", &c.SessionIdle}, {"MARGEN_SESSION_LIFETIME", &c.SessionLifetime},
		{"MARGEN_SURVEY_EXPIRY", &c.SurveyExpiry}, {"MARGEN_SURVEY_DEVICE_EVERY", &c.SurveyDeviceEvery},
		{"MARGEN_CASE_SLA", &c.CaseSLA}} {
		if v := a.getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return c, fmt.Errorf("%s: %q is not a positive duration: use e.g. 8h", d.env, v)
			}
			*d.dst = x
		}
	}
	for _, r := range []struct {
		env string
		dst *float64
	}{{"MARGEN_RATE_LIMIT_TOKEN", &c.RateToken}, {"MARGEN_RATE_LIMIT_ADDRESS", &c.RateAddress}} {
		if v := a.getenv(r.env); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !validRate(f) {
				return c, fmt.Errorf("%s: %q is not a rate: use requests per second, like 50, or 0 for no limit", r.env, v)
			}
			*r.dst = f
		}
	}
	for _, b := range []struct {
		env string
		dst *int
	}{{"MARGEN_RATE_LIMIT_TOKEN_BURST", &c.RateTokenBurst}, {"MARGEN_RATE_LIMIT_ADDRESS_BURST", &c.RateAddressBurst}} {
		if v := a.getenv(b.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return c, fmt.Errorf("%s: %q is not a burst: use a whole number of requests, at least 1", b.env, v)
			}
			*b.dst = n
		}
	}
	for _, n := range []struct {
		env string
		dst *int
	}{
		{"MARGEN_DB_MAX_CONNS", &c.DBMaxConns},
		{"MARGEN_MAX_STREAMS_PER_MEMBER", &c.StreamsPerMember},
		{"MARGEN_MAX_STREAMS_PER_ORG", &c.StreamsPerOrg},
	} {
		if v := a.getenv(n.env); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i <= 0 {
				return c, fmt.Errorf("%s: %q is not a positive whole number", n.env, v)
			}
			*n.dst = i
		}
	}
	c.SMTP = mailer.Config{Host: a.getenv("MARGEN_SMTP_HOST"), User: a.getenv("MARGEN_SMTP_USER"),
		Password: a.getenv("MARGEN_SMTP_PASSWORD"), From: a.getenv("MARGEN_SMTP_FROM"), TLS: mailer.TLSStartTLS,
		PublicURL: a.getenv("MARGEN_PUBLIC_URL")}
	c.SMTPPasswordFile = a.getenv("MARGEN_SMTP_PASSWORD_FILE")
	if v := a.getenv("MARGEN_SMTP_TLS"); v != "" {
		v = strings.ToLower(v)
		if v != mailer.TLSNone && v != mailer.TLSStartTLS && v != mailer.TLSImplicit {
			return c, fmt.Errorf("MARGEN_SMTP_TLS: %q is not a TLS mode: use none, starttls or tls", v)
		}
		c.SMTP.TLS = v
	}
	if v := a.getenv("MARGEN_SMTP_PORT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("MARGEN_SMTP_PORT: %q is not a port: use 1 to 65535", v)
		}
		c.SMTP.Port = n
	}
	if v := a.getenv("MARGEN_DB_CONN_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("MARGEN_DB_CONN_WAIT: %q is not a positive duration: use e.g. 2s or 500ms", v)
		}
		c.DBConnWait = d
	}
	return c, nil
}

// validRate says whether f is a usable rate: 0 (no limit) or a finite
// positive number of requests per second.
func validRate(f float64) bool { return f >= 0 && !math.IsInf(f, 0) && !math.IsNaN(f) }

// limiters builds the API's rate limiters (nil where a rate is 0).
func (c config) limiters() (tokens, addrs *ratelimit.Limiter) {
	return ratelimit.New(ratelimit.Options{PerSecond: c.RateToken, Burst: c.RateTokenBurst}),
		ratelimit.New(ratelimit.Options{PerSecond: c.RateAddress, Burst: c.RateAddressBurst})
}

// LogValue writes the configuration into logs with its secrets masked.
func (c config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("db", maskDSN(c.DB)),
		slog.String("addr", c.Addr),
		slog.String("log_format", c.LogFormat),
		slog.String("log_level", c.LogLevel.String()),
		slog.Duration("sla_every", c.SLAEvery),
		slog.Duration("idempotency_ttl", c.IdempotencyTTL),
		slog.Duration("write_timeout", c.WriteTimeout),
		slog.String("debug_addr", c.DebugAddr),
		slog.Bool("metrics_public", c.MetricsPublic),
		slog.Bool("webhook_allow_private", c.WebhookAllowPrivate),
		slog.String("cookies", c.Cookies),
		slog.Duration("session_idle", c.SessionIdle),
		slog.Duration("session_lifetime", c.SessionLifetime),
		slog.Float64("rate_limit_token", c.RateToken),
		slog.Int("rate_limit_token_burst", c.RateTokenBurst),
		slog.Float64("rate_limit_address", c.RateAddress),
		slog.Int("rate_limit_address_burst", c.RateAddressBurst),
		slog.Int("db_max_conns", c.DBMaxConns),
		slog.Duration("db_conn_wait", c.DBConnWait),
		slog.Int("max_streams_per_member", c.StreamsPerMember),
		slog.Int("max_streams_per_org", c.StreamsPerOrg),
		slog.String("backup_dir", c.BackupDir),
		slog.Duration("backup_every", c.BackupEvery),
		slog.Int("backup_keep", c.BackupKeep),
		slog.Any("smtp", c.SMTP), // the password masked (mailer.Config.LogValue)
		slog.String("smtp_password_file", c.SMTPPasswordFile),
	)
}

// String is the configuration with its secrets masked.
func (c config) String() string {
	return fmt.Sprintf("db=%s addr=%s log_format=%s log_level=%s", maskDSN(c.DB), c.Addr, c.LogFormat, c.LogLevel)
}

// maskDSN hides the password of a PostgreSQL URL (in the user info or as a
// password= parameter). A SQLite path is shown as is.
func maskDSN(dsn string) string {
	if !store.IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unreadable URL hidden)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// logger builds the one logger of the process: text or JSON on w.
func (c config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// errHelp says the command printed its help: the run succeeded.
var errHelp = errors.New("help shown")

// flagSet is a command's flags, its help text and its required flags.
type flagSet struct {
	*flag.FlagSet
	a        *app
	name     string
	synopsis string // positional arguments, e.g. "FILE"
	help     string
	required []string
}

func (a *app) flags(name, synopsis, help string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("margen "+name, flag.ContinueOnError), a: a, name: name,
		synopsis: synopsis, help: help}
	fs.SetOutput(io.Discard)
	if a.collect != nil {
		a.collect(fs)
	}
	return fs
}

// dbFlag adds --db, defaulting to MARGEN_DB.
func (fs *flagSet) dbFlag(cfg *config) {
	fs.StringVar(&cfg.DB, "db", cfg.DB, "database: a SQLite file path or a postgres:// URL (env MARGEN_DB)")
	fs.StringVar(&cfg.AuditKeyFile, "audit-key-file", cfg.AuditKeyFile,
		"file holding the audit key (env MARGEN_AUDIT_KEY_FILE; default: beside a SQLite database, else in the user config directory)")
}

// logFlags adds --log-level and --log-format, defaulting to
// MARGEN_LOG_LEVEL and MARGEN_LOG_FORMAT.
func (fs *flagSet) logFlags(cfg *config) {
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "least `level` of the log lines written: debug, info, warn or error (env MARGEN_LOG_LEVEL)")
	fs.Var(logFormat{&cfg.LogFormat}, "log-format", "log `format`, text or json; logs go to standard error (env MARGEN_LOG_FORMAT)")
}

// logFormat is the value of --log-format.
type logFormat struct{ p *string }

func (f logFormat) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

func (f logFormat) Set(v string) error {
	v = strings.ToLower(v)
	if v != "text" && v != "json" {
		return fmt.Errorf("%q is not a log format: use text or json", v)
	}
	*f.p = v
	return nil
}

// require marks flags that must be given a non-empty value.
func (fs *flagSet) require(names ...string) { fs.required = append(fs.required, names...) }

func (fs *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage:\n  margen %s [flags]", fs.name)
	if fs.synopsis != "" {
		fmt.Fprintf(w, " %s", fs.synopsis)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(fs.help))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			typ, text := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s", f.Name)
			if typ != "" {
				fmt.Fprintf(w, " %s", strings.ToUpper(typ))
			}
			fmt.Fprintf(w, "\n      %s", text)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
}

// parse parses the flags, which may come before, between or after the
// positional arguments, and returns the positional arguments; nargs is how
// many there must be.
func (fs *flagSet) parse(args []string, nargs int) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.usage(fs.a.stdout)
			return nil, errHelp
		}
		if err != nil {
			return nil, &usageError{err.Error(), fs.usage}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	for _, name := range fs.required {
		if f := fs.Lookup(name); f != nil && f.Value.String() == "" {
			return nil, &usageError{fmt.Sprintf("flag --%s is required", name), fs.usage}
		}
	}
	if len(pos) != nargs {
		switch {
		case nargs == 0:
			return nil, &usageError{fmt.Sprintf("unexpected argument %q", pos[0]), fs.usage}
		case len(pos) < nargs:
			return nil, &usageError{fmt.Sprintf("missing argument %s", fs.synopsis), fs.usage}
		default:
			return nil, &usageError{fmt.Sprintf("too many arguments: %s", strings.Join(pos, " ")), fs.usage}
		}
	}
	return pos, nil
}

// validCaseMax reports whether n is a case threshold on a scale up to max:
// 1 to max, or -1 for none (0 would mean the default to margen.CaseRule).
func validCaseMax(n, max int) bool { return n == -1 || (n >= 1 && n <= max) }

// smtpFlags adds the SMTP server's flags and --public-url; the password has
// no flag (a flag shows in the process list): MARGEN_SMTP_PASSWORD or
// --smtp-password-file.
func (fs *flagSet) smtpFlags(cfg *config) {
	fs.StringVar(&cfg.SMTP.Host, "smtp-host", cfg.SMTP.Host, "SMTP server that sends survey links by email; email is off when empty (env MARGEN_SMTP_HOST)")
	fs.IntVar(&cfg.SMTP.Port, "smtp-port", cfg.SMTP.Port, "SMTP server port (env MARGEN_SMTP_PORT; default 587, 465 with --smtp-tls tls, 25 with none)")
	fs.StringVar(&cfg.SMTP.User, "smtp-user", cfg.SMTP.User, "SMTP user name, when the server wants one (env MARGEN_SMTP_USER)")
	fs.StringVar(&cfg.SMTPPasswordFile, "smtp-password-file", cfg.SMTPPasswordFile, "file holding the SMTP password (env MARGEN_SMTP_PASSWORD_FILE; or the password itself in MARGEN_SMTP_PASSWORD)")
	fs.StringVar(&cfg.SMTP.From, "smtp-from", cfg.SMTP.From, "address survey mails come from, e.g. encuestas@example.com (env MARGEN_SMTP_FROM)")
	fs.StringVar(&cfg.SMTP.TLS, "smtp-tls", cfg.SMTP.TLS, "TLS to the SMTP server: starttls (required), tls (from the first byte) or none (env MARGEN_SMTP_TLS)")
	fs.StringVar(&cfg.SMTP.PublicURL, "public-url", cfg.SMTP.PublicURL, "absolute base URL customers reach margen at, e.g. https://margen.example.com; links in emails and QR codes start with it (env MARGEN_PUBLIC_URL)")
}

// smtpConfig completes and checks the SMTP configuration after the flags:
// the password file is read, the port defaults to the TLS mode's.
func (c *config) smtpConfig(readFile func(string) ([]byte, error)) error {
	if c.SMTPPasswordFile != "" {
		b, err := readFile(c.SMTPPasswordFile)
		if err != nil {
			return fmt.Errorf("--smtp-password-file: cannot read the SMTP password: %w", err)
		}
		c.SMTP.Password = strings.TrimRight(string(b), "\r\n")
	}
	if c.SMTP.Port == 0 {
		c.SMTP.Port = mailer.DefaultPort(c.SMTP.TLS)
	}
	if c.SMTP.PublicURL != "" {
		u, err := mailer.ParsePublicURL(c.SMTP.PublicURL)
		if err != nil {
			return err
		}
		c.SMTP.PublicURL = u
	}
	return c.SMTP.Validate()
}
