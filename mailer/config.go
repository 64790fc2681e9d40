package mailer

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

// TLS modes of the SMTP connection.
const (
	TLSNone     = "none"     // plain SMTP (a relay on this host or a test server)
	TLSStartTLS = "starttls" // plain, then STARTTLS, required (port 587)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

// DefaultTimeout bounds one SMTP conversation.
const DefaultTimeout = 30 * time.Second

// Config is the SMTP server and the public address mails link to. Mail is
// off when Host is empty.
type Config struct {
	Host     string
	Port     int
	User     string
	Password string // secret: never logged (LogValue masks it)
	From     string // the sender's address, e.g. encuestas@example.com
	TLS      string // TLSNone, TLSStartTLS or TLSImplicit
	// PublicURL is the absolute base URL of margen as customers reach it
	// (https://margen.example.com): links in mails start with it.
	PublicURL string
	Timeout   time.Duration
}

// Enabled reports whether SMTP is configured.
func (c Config) Enabled() bool { return c.Host != "" }

// DefaultPort is the usual port of a TLS mode.
func DefaultPort(mode string) int {
	switch mode {
	case TLSImplicit:
		return 465
	case TLSNone:
		return 25
	}
	return 587
}

// Validate checks the configuration; flag names in its errors are the
// serve command's.
func (c Config) Validate() error {
	if c.PublicURL != "" {
		if _, err := ParsePublicURL(c.PublicURL); err != nil {
			return err
		}
	}
	if !c.Enabled() {
		if c.User != "" || c.Password != "" || c.From != "" {
			return fmt.Errorf("--smtp-user, MARGEN_SMTP_PASSWORD and --smtp-from need --smtp-host")
		}
		return nil
	}
	if strings.ContainsAny(c.Host, " /\t\r\n@") || len(c.Host) > 253 {
		return fmt.Errorf("--smtp-host: %q is not a host name or address", c.Host)
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		return fmt.Errorf("--smtp-tls: %q is not a TLS mode: use none, starttls or tls", c.TLS)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("--smtp-port: %d is not a port: use 1 to 65535", c.Port)
	}
	if c.From == "" {
		return fmt.Errorf("--smtp-from is required with --smtp-host: the address survey mails come from")
	}
	if _, err := margen.ParseEmail(c.From); err != nil {
		return fmt.Errorf("--smtp-from: %q is not an email address", c.From)
	}
	if c.Password != "" && c.User == "" {
		return fmt.Errorf("MARGEN_SMTP_PASSWORD needs --smtp-user")
	}
	if c.PublicURL == "" {
		return fmt.Errorf("--smtp-host needs --public-url: the address customers open the survey links at (e.g. https://margen.example.com)")
	}
	return nil
}

// ParsePublicURL checks an absolute http(s) base URL without query or
// fragment and returns it without a trailing slash.
func ParsePublicURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--public-url: %q is not an absolute http(s) URL without query (e.g. https://margen.example.com)", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// LogValue writes the configuration into logs, the password masked.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = "xxxxx"
	}
	return slog.GroupValue(slog.String("host", c.Host), slog.Int("port", c.Port), slog.String("user", c.User),
		slog.String("password", pw), slog.String("from", c.From), slog.String("tls", c.TLS),
		slog.String("public_url", c.PublicURL))
}
