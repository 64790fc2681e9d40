package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
)

// Options tune a Worker. Zero values take the defaults.
type Options struct {
	Clock  margen.Clock
	Logger *slog.Logger
	// Client sends the requests (default: 10 s timeout, redirects not
	// followed: a 3xx is a failed attempt).
	Client *http.Client
	Every  time.Duration // how often Run dispatches new deliveries (default 1s)
	// MaxAttempts, BaseBackoff and MaxBackoff are the delivery jobs'
	// retry policy (see Kind; defaults 8, 5s and 1h).
	MaxAttempts int
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// OnFailure is called once per failed attempt (for a failure counter).
	OnFailure func()
	// AllowPrivate lets the default client deliver to loopback, private
	// and link-local addresses (refused by default: see publicOnly).
	AllowPrivate bool
	// Timeout bounds each request when Client has none (default 10s).
	Timeout time.Duration
}

// Defaults.
const (
	DefaultEvery       = time.Second
	DefaultMaxAttempts = 8
	DefaultBaseBackoff = 5 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultTimeout     = 10 * time.Second

	maxResponse   = 1 << 10  // bytes of the answer recorded
	maxDrain      = 64 << 10 // bytes read past that, to reuse the connection
	maxErrText    = 300
	dispatchLimit = 500
	dispatchMax   = 20 // dispatch rounds per organisation per Dispatch
)

// Worker turns audit entries into deliveries (Run, Dispatch) and sends a
// delivery when the job queue runs its job (Deliver, registered with Kind).
// Several workers (processes) may run against one database.
type Worker struct {
	st      Store
	clock   margen.Clock
	log     *slog.Logger
	client  *http.Client
	timeout time.Duration
	every   time.Duration
	max     int
	base    time.Duration
	maxWait time.Duration
	fail    func()
}

// Store is what the worker asks of the database: four methods of
// margen.WebhookStore (margen.Store has them).
type Store interface {
	OrgsWithWebhooks(ctx context.Context) ([]string, error)
	DispatchWebhooks(ctx context.Context, orgID string, now time.Time, limit int) (int, error)
	DeliveryForAttempt(ctx context.Context, orgID, id string) (*margen.Delivery, error)
	FinishDelivery(ctx context.Context, d *margen.Delivery, a margen.DeliveryAttempt, j *margen.Job, r margen.JobResult) error
}

// NewWorker returns a worker over the webhook store.
func NewWorker(st Store, opt Options) *Worker {
	w := &Worker{st: st, clock: opt.Clock, log: opt.Logger, client: opt.Client, timeout: opt.Timeout,
		every: opt.Every, max: opt.MaxAttempts, base: opt.BaseBackoff, maxWait: opt.MaxBackoff, fail: opt.OnFailure}
	if w.clock == nil {
		w.clock = margen.SystemClock{}
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.client == nil {
		w.client = newClient(w.timeout, opt.AllowPrivate)
	}
	if w.client.Timeout > 0 {
		w.timeout = w.client.Timeout
	}
	if w.every <= 0 {
		w.every = DefaultEvery
	}
	if w.max <= 0 {
		w.max = DefaultMaxAttempts
	}
	if w.base <= 0 {
		w.base = DefaultBaseBackoff
	}
	if w.maxWait <= 0 {
		w.maxWait = DefaultMaxBackoff
	}
	if w.fail == nil {
		w.fail = func() {}
	}
	return w
}

// Kind is how the job queue runs delivery jobs (margen.JobWebhookDelivery):
// Deliver, with the worker's retry policy. The attempt's timeout leaves
// room for the request and for recording it.
func (w *Worker) Kind() jobs.Kind {
	return jobs.Kind{Handler: w.Deliver, MaxAttempts: w.max, BaseBackoff: w.base, MaxBackoff: w.maxWait,
		Timeout: w.timeout + 15*time.Second}
}

// Run dispatches every Options.Every until ctx is done.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		if _, err := w.Dispatch(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("webhook: dispatch round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Dispatch creates the deliveries (and their jobs) of new audit entries for
// every organisation with webhooks. It returns how many it created; err is
// the first error met (the round goes on past per-organisation errors).
func (w *Worker) Dispatch(ctx context.Context) (dispatched int, err error) {
	orgs, err := w.st.OrgsWithWebhooks(ctx)
	for _, org := range orgs {
		for range dispatchMax {
			n, derr := w.st.DispatchWebhooks(ctx, org, w.clock.Now(), dispatchLimit)
			if derr != nil {
				if err == nil {
					err = derr
				}
				if ctx.Err() == nil {
					w.log.Warn("webhook: dispatch failed", "org", org, "err", derr)
				}
				break
			}
			dispatched += n
			if n == 0 {
				break
			}
		}
	}
	return dispatched, err
}

// Deliver is the handler of delivery jobs: it makes one attempt to send the
// job's delivery and records it with the job's result, in one transaction
// (margen.WebhookStore.FinishDelivery). A delivery already delivered or
// given up (its endpoint deleted) is not sent again.
func (w *Worker) Deliver(ctx context.Context, a *jobs.Attempt) error {
	var p struct {
		Delivery string `json:"delivery"`
	}
	if err := json.Unmarshal(a.Job.Payload, &p); err != nil {
		return jobs.Permanent(fmt.Errorf("webhook: job %s: cannot decode its payload: %w", a.Job.ID, err))
	}
	if p.Delivery == "" {
		return jobs.Permanent(fmt.Errorf("webhook: job %s: its payload names no delivery", a.Job.ID))
	}
	d, err := w.st.DeliveryForAttempt(ctx, a.Job.OrgID, p.Delivery)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status != margen.DeliveryPending {
		return nil
	}
	return w.deliver(ctx, d, a)
}

// deliver makes one attempt and records it with the job's result.
func (w *Worker) deliver(ctx context.Context, d *margen.Delivery, job *jobs.Attempt) error {
	now := w.clock.Now()
	a := margen.DeliveryAttempt{At: now}
	// Neither a bad secret nor a bad URL heals by waiting: give up at once.
	// (The error texts name neither: a URL may carry credentials.)
	sig, serr := Sign(d.Secret, d.ID, now, d.Payload)
	if serr != nil {
		a.Error = "invalid signing secret"
		w.fail()
		return w.finish(ctx, d, a, job, jobs.Permanent(errors.New(a.Error)))
	}
	rctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, rerr := http.NewRequestWithContext(rctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if rerr != nil {
		a.Error = "invalid URL"
		w.fail()
		return w.finish(ctx, d, a, job, jobs.Permanent(errors.New(a.Error)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "margen-webhooks/1")
	req.Header.Set(HeaderID, d.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	start := time.Now() // monotonic: a measurement, not a domain time
	resp, herr := w.client.Do(req)
	if herr == nil {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		if rerr != nil {
			// The status counts (the receiver answered); the body is only
			// kept for the attempt's record, so it is kept cut short.
			w.log.Warn("webhook: reading the receiver's answer failed", "org", d.OrgID, "delivery", d.ID,
				"status", resp.StatusCode, "err", rerr)
		}
		io.CopyN(io.Discard, resp.Body, maxDrain)
		resp.Body.Close()
		a.StatusCode = resp.StatusCode
		a.Response = clean(body)
	} else {
		if ctx.Err() != nil {
			// We are shutting down, the receiver did nothing wrong: leave
			// the attempt unrecorded; the lease expires and it is retried.
			return ctx.Err()
		}
		a.Error = transportError(herr)
	}
	a.DurationMS = time.Since(start).Milliseconds()

	var failed error
	if herr != nil || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		if a.Error != "" {
			failed = errors.New(a.Error)
		} else {
			failed = fmt.Errorf("receiver answered %d", a.StatusCode)
		}
		w.fail()
		w.log.Info("webhook: attempt failed", "org", d.OrgID, "delivery", d.ID, "webhook", d.WebhookID,
			"attempt", job.Job.Attempts, "status", a.StatusCode, "err", a.Error, "final", job.Final())
	}
	return w.finish(ctx, d, a, job, failed)
}

// finish records an attempt with the job's result, even while shutting
// down: the request was made and its result must not be lost.
func (w *Worker) finish(ctx context.Context, d *margen.Delivery, a margen.DeliveryAttempt, job *jobs.Attempt, failed error) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.st.FinishDelivery(fctx, d, a, job.Job, job.Result(failed)); err != nil {
		w.log.Error("webhook: cannot record attempt", "org", d.OrgID, "delivery", d.ID, "err", err)
		return err
	}
	return jobs.ErrRecorded
}

// transportError says why no HTTP answer came, without the URL (it may
// carry credentials in its query).
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout"
		}
		err = ue.Err
	}
	return clip(err.Error(), maxErrText)
}

// clean makes a response body storable as text: valid UTF-8, no NUL.
func clean(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
