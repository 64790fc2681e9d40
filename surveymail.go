package margen

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Survey links by email: when SMTP is configured, a survey link can be
// sent to the customer. The send is a row (SurveyEmail) and a job
// (JobSurveyEmail) written in the link's own transaction (the
// transactional outbox); the job's handler sends the mail and records each
// attempt on the row, so the manager sees what was sent, what is retried
// and what failed.

// JobSurveyEmail sends one survey link by email (payload: the send's id;
// its unique key is the send's id).
const JobSurveyEmail = "survey.email"

// Survey email statuses.
const (
	EmailQueued   = "queued"   // waiting for its first attempt
	EmailRetrying = "retrying" // an attempt failed, another is due
	EmailSent     = "sent"     // the SMTP server accepted it
	EmailFailed   = "failed"   // given up (last attempt, or a permanent error)
)

// MaxEmailAddress bounds an email address (RFC 5321's path limit).
const MaxEmailAddress = 254

// maxEmailError bounds the last error kept on a send.
const maxEmailError = 300

// SurveyEmail is one survey link sent by email. Address is personal data:
// shown whole only to managers (MaskEmail for the others), never logged.
type SurveyEmail struct {
	ID        string     `json:"id"`
	OrgID     string     `json:"-"`
	LinkID    string     `json:"link_id"`
	Address   string     `json:"address"`
	Language  string     `json:"language"`
	Status    string     `json:"status"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	// Token is the link's token, kept only until the mail is sent or given
	// up: the job needs it to write the link.
	Token string `json:"-"`
}

// ParseEmail checks a customer's email address typed at the counter or
// sent to the API: trimmed, at most MaxEmailAddress bytes of UTF-8 without
// control characters (no header injection), one bare address
// (name@domain, no display name, no group). It returns the address.
func ParseEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	bad := &Error{Code: EINVALID, Key: "mail.error.address", Field: "email"}
	if s == "" || len(s) > MaxEmailAddress || !utf8.ValidString(s) {
		return "", bad
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ',' || r == ';' || r == '<' || r == '>' || r == ' ' {
			return "", bad
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", bad
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || !strings.Contains(s[at+1:], ".") {
		return "", bad
	}
	return s, nil
}

// EmailOf returns a customer's contact when it is an email address, for
// the counter to offer it; "" otherwise.
func EmailOf(contact string) string {
	a, err := ParseEmail(contact)
	if err != nil {
		return ""
	}
	return a
}

// MaskEmail shows an address to someone who may not see it whole: its
// first character and its domain ("c•••@example.com").
func MaskEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return "•••"
	}
	r, _ := utf8.DecodeRuneInString(addr)
	return string(r) + "•••" + addr[at:]
}

// EmailLanguage is the language of a survey email: es or en, as asked,
// else the organisation's, else Spanish.
func EmailLanguage(asked, org string) string {
	for _, l := range []string{asked, org} {
		l = strings.ToLower(strings.TrimSpace(l))
		if strings.HasPrefix(l, "en") {
			return "en"
		}
		if strings.HasPrefix(l, "es") {
			return "es"
		}
	}
	return "es"
}

// EmailAfter is a send's state after an attempt: sent when it succeeded;
// otherwise retrying while the job has a retry (r.RetryAt), else failed.
// The error is kept cut short, for the manager to read.
func EmailAfter(e SurveyEmail, sent bool, r JobResult) SurveyEmail {
	e.Attempts++
	e.UpdatedAt = r.At
	switch {
	case sent:
		e.Status, e.LastError = EmailSent, ""
		t := r.At
		e.SentAt = &t
	case r.RetryAt != nil:
		e.Status, e.LastError = EmailRetrying, clipText(r.Error, maxEmailError)
	default:
		e.Status, e.LastError = EmailFailed, clipText(r.Error, maxEmailError)
	}
	if e.Status != EmailRetrying {
		e.Token = "" // no longer needed: never keep a usable link
	}
	return e
}

// clipText cuts s to at most n bytes on a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SurveyEmailStore is what survey emails need of the database.
type SurveyEmailStore interface {
	// CreateSurveyLinkEmail stores a link as CreateSurveyLink does and, in
	// the same transaction, the send e (its link, token and times filled
	// in) and its JobSurveyEmail job.
	CreateSurveyLinkEmail(ctx context.Context, l *SurveyLink, e *SurveyEmail, actor string, idem *Idempotency) error
	// SurveyEmailForSend returns a send with its token (ENOTFOUND when
	// missing).
	SurveyEmailForSend(ctx context.Context, orgID, id string) (*SurveyEmail, error)
	// FinishSurveyEmail records an attempt: the send's new state (EmailAfter)
	// and, in the same transaction, the result r of the job j that made it.
	// A claim that no longer holds the job changes nothing, unless the mail
	// was sent.
	FinishSurveyEmail(ctx context.Context, e *SurveyEmail, sent bool, j *Job, r JobResult) error
	// ListSurveyEmails lists the organisation's latest sends, newest first
	// (without their tokens).
	ListSurveyEmails(ctx context.Context, orgID string, limit int) ([]SurveyEmail, error)
}

// MaxSurveyEmailsPerHour bounds the survey emails one member asks for in an
// hour: a busy waiter serves a few dozen tables an hour, and margen must
// never become a relay that mails any address as often as a token can ask.
const MaxSurveyEmailsPerHour = 60

// AdmitSurveyEmail is the rule for one more email from a member who asked
// for sentLastHour in the hour before.
func AdmitSurveyEmail(sentLastHour int) error {
	if sentLastHour >= MaxSurveyEmailsPerHour {
		return Errorf(ETOOMANY, "mail.error.too_many", "max", MaxSurveyEmailsPerHour)
	}
	return nil
}
