package mailer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gomail "github.com/wneessen/go-mail"
)

// Sender sends one message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends through the configured SMTP server, one connection per
// message (survey mails are few; a kept connection would only go stale).
type SMTP struct{ cfg Config }

// NewSMTP returns the sender of a valid, enabled configuration.
func NewSMTP(cfg Config) *SMTP {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &SMTP{cfg: cfg}
}

// ErrRejected marks a recipient the server refused for good (a 5xx answer
// to RCPT TO): retrying cannot help.
var ErrRejected = errors.New("mailer: the server refused the recipient")

// Send delivers m. Its error never names the recipient (the server's
// answer is cleaned of the address), so it may be logged and stored.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("mailer: sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mailer: invalid recipient address")
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	opts := []gomail.Option{gomail.WithPort(s.cfg.Port), gomail.WithTimeout(s.cfg.Timeout)}
	switch s.cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.User != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if s.cfg.TLS == TLSNone {
			// Without TLS only PLAIN is possible; the operator chose it.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.cfg.User), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("mailer: %s", scrub(err.Error(), m.To))
	}
	err = c.DialAndSendWithContext(ctx, msg)
	if err == nil {
		return nil
	}
	text := scrub(err.Error(), m.To)
	var se *gomail.SendError
	if errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp() {
		return fmt.Errorf("%w: %s", ErrRejected, text)
	}
	return errors.New(text)
}

// scrub removes the recipient's address (and its local part) from a
// server's answer, so an error can be logged and stored.
func scrub(s, addr string) string {
	if addr == "" {
		return s
	}
	s = strings.ReplaceAll(s, addr, "<recipient>")
	if at := strings.LastIndexByte(addr, '@'); at > 2 {
		s = strings.ReplaceAll(s, addr[:at], "<recipient>")
	}
	return s
}
