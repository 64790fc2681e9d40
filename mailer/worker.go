package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/jobs"
)

// Store is what the survey mail job needs of the database.
type Store interface {
	SurveyEmailForSend(ctx context.Context, orgID, id string) (*margen.SurveyEmail, error)
	FinishSurveyEmail(ctx context.Context, e *margen.SurveyEmail, sent bool, j *margen.Job, r margen.JobResult) error
	SurveyLinkByHash(ctx context.Context, hash []byte) (*margen.SurveyLink, error)
	OrgByID(ctx context.Context, id string) (*margen.Org, error)
}

// Results counted by Options.OnResult (margen_email_total{result}).
const (
	ResultSent   = "sent"
	ResultRetry  = "retry"
	ResultFailed = "failed"
)

// Options tune a Worker.
type Options struct {
	Clock  margen.Clock
	Logger *slog.Logger
	// OnResult is told how each attempt ended (ResultSent, ResultRetry,
	// ResultFailed), for the metric.
	OnResult func(result string)
	// MaxAttempts is the job kind's attempt budget (default 8).
	MaxAttempts int
	// BaseBackoff is the first retry's delay cap (default the runner's).
	BaseBackoff time.Duration
}

// Worker sends survey links by email: the handler of margen.JobSurveyEmail.
type Worker struct {
	st   Store
	send Sender
	cat  *i18n.Catalog
	base string // the public URL
	opt  Options
}

// NewWorker returns the survey mail worker; publicURL is Config.PublicURL.
func NewWorker(st Store, send Sender, cat *i18n.Catalog, publicURL string, opt Options) *Worker {
	if opt.Clock == nil {
		opt.Clock = margen.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.OnResult == nil {
		opt.OnResult = func(string) {}
	}
	return &Worker{st: st, send: send, cat: cat, base: publicURL, opt: opt}
}

// Kind is the job kind to register for margen.JobSurveyEmail.
func (w *Worker) Kind() jobs.Kind {
	return jobs.Kind{Handler: w.Send, MaxAttempts: w.opt.MaxAttempts, BaseBackoff: w.opt.BaseBackoff,
		Timeout: DefaultTimeout + 5*time.Second}
}

// Send is one attempt of a survey mail job: it writes the mail, sends it
// and records the attempt with the job's result in one transaction. A send
// already sent or given up is not sent again; a link answered or expired
// meanwhile is given up (there is nothing left to answer).
func (w *Worker) Send(ctx context.Context, a *jobs.Attempt) error {
	var p struct {
		Email string `json:"email"`
	}
	if err := json.Unmarshal(a.Job.Payload, &p); err != nil || p.Email == "" {
		return jobs.Permanent(fmt.Errorf("mailer: job %s: its payload names no email", a.Job.ID))
	}
	e, err := w.st.SurveyEmailForSend(ctx, a.Job.OrgID, p.Email)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.Status == margen.EmailSent || e.Status == margen.EmailFailed || e.Token == "" {
		return nil
	}
	msg, err := w.compose(ctx, e)
	if err != nil {
		if errors.Is(err, errGone) {
			return w.finish(ctx, e, a, jobs.Permanent(err))
		}
		return err // the database: try again
	}
	serr := w.send.Send(ctx, msg)
	if serr != nil && ctx.Err() != nil {
		// Shutting down: the server did nothing wrong; the lease runs out
		// and the job is claimed again.
		return ctx.Err()
	}
	if errors.Is(serr, ErrRejected) {
		serr = jobs.Permanent(serr)
	}
	return w.finish(ctx, e, a, serr)
}

// errGone says the link can no longer be answered.
var errGone = errors.New("the survey link was answered or has expired")

// compose writes the mail of a send.
func (w *Worker) compose(ctx context.Context, e *margen.SurveyEmail) (Message, error) {
	l, err := w.st.SurveyLinkByHash(ctx, margen.SurveyTokenHash(e.Token))
	if margen.IsCode(err, margen.ENOTFOUND) || err == nil && (l.OrgID != e.OrgID || l.AnsweredAt != nil ||
		!w.opt.Clock.Now().Before(l.ExpiresAt)) {
		return Message{}, errGone
	}
	if err != nil {
		return Message{}, err
	}
	org, err := w.st.OrgByID(ctx, e.OrgID)
	if err != nil {
		return Message{}, err
	}
	loc, lerr := time.LoadLocation(org.Timezone)
	if lerr != nil {
		loc = time.UTC
	}
	return ComposeSurvey(w.cat, e.Address, SurveyMail{Language: margen.EmailLanguage(e.Language, org.Language),
		Business: org.Name, URL: w.base + "/s/" + e.Token, Expires: l.ExpiresAt, Location: loc})
}

// finish records the attempt and the job's result together, even while
// shutting down: a sent mail must not be sent twice.
func (w *Worker) finish(ctx context.Context, e *margen.SurveyEmail, a *jobs.Attempt, failed error) error {
	res := a.Result(failed)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.st.FinishSurveyEmail(fctx, e, failed == nil, a.Job, res); err != nil {
		w.opt.Logger.Error("mailer: cannot record a survey mail's attempt", "org", e.OrgID, "email", e.ID, "err", err)
		return err
	}
	result := ResultSent
	switch {
	case failed != nil && res.RetryAt != nil:
		result = ResultRetry
	case failed != nil:
		result = ResultFailed
	}
	w.opt.OnResult(result)
	if failed != nil {
		// The error names no recipient (SMTP.Send scrubs it).
		w.opt.Logger.Warn("mailer: survey mail attempt failed", "org", e.OrgID, "email", e.ID,
			"attempt", a.Job.Attempts, "final", res.RetryAt == nil, "err", failed)
	}
	return jobs.ErrRecorded
}
