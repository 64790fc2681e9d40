package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen/store"
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
}

const (
	defaultDB       = "./margen.db"
	defaultAddr     = "127.0.0.1:8080"
	defaultSLAEvery = time.Second

	defaultBackupEvery = 6 * time.Hour
	defaultBackupKeep  = 14
	// minBackupEvery keeps a mistyped interval ("6s") from filling the disk.
	minBackupEvery = time.Minute
)

// config reads the environment. Flags are applied on top by each command.
func (a *app) config() (config, error) {
	c := config{DB: defaultDB, Addr: defaultAddr, LogFormat: "text", LogLevel: slog.LevelInfo, SLAEvery: defaultSLAEvery,
		BackupEvery: defaultBackupEvery, BackupKeep: defaultBackupKeep}
	if v := a.getenv("MARGEN_DB"); v != "" {
		c.DB = v
	}
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
	return c, nil
}

// LogValue writes the configuration into logs with its secrets masked.
func (c config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("db", maskDSN(c.DB)),
		slog.String("addr", c.Addr),
		slog.String("log_format", c.LogFormat),
		slog.String("log_level", c.LogLevel.String()),
		slog.Duration("sla_every", c.SLAEvery),
		slog.Bool("metrics_public", c.MetricsPublic),
		slog.Bool("webhook_allow_private", c.WebhookAllowPrivate),
		slog.String("backup_dir", c.BackupDir),
		slog.Duration("backup_every", c.BackupEvery),
		slog.Int("backup_keep", c.BackupKeep),
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
