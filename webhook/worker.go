package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/margenhq/margen"
)

// Options tune a Worker. Zero values take the defaults.
type Options struct {
	Clock  margen.Clock
	Logger *slog.Logger
	// Client sends the requests (default: 10 s timeout, redirects not
	// followed: a 3xx is a failed attempt).
	Client *http.Client
	Every  time.Duration // how often Run works (default 1s)
	// Lease is how long a claimed delivery is reserved for this worker
	// (default 1m; at least the request timeout plus 30 s).
	Lease       time.Duration
	MaxAttempts int           // attempts before a delivery fails (default 8)
	BaseBackoff time.Duration // first retry delay cap (default 5s)
	MaxBackoff  time.Duration // largest retry delay (default 1h)
	// OnFailure is called once per failed attempt (for a failure counter).
	OnFailure func()
	// Concurrency bounds the requests in flight (default 16).
	Concurrency int
	// AllowPrivate lets the default client deliver to loopback, private
	// and link-local addresses (refused by default: see publicOnly).
	AllowPrivate bool
	// Timeout bounds each request when Client has none (default 10s).
	Timeout time.Duration
}

// Defaults.
const (
	DefaultEvery       = time.Second
	DefaultLease       = time.Minute
	DefaultMaxAttempts = 8
	DefaultBaseBackoff = 5 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultConcurrency = 16
	DefaultTimeout     = 10 * time.Second

	maxResponse   = 1 << 10  // bytes of the answer recorded
	maxDrain      = 64 << 10 // bytes read past that, to reuse the connection
	maxErrText    = 300
	minBackoff    = time.Second
	dispatchLimit = 500
	dispatchMax   = 20 // dispatch rounds per organisation per Once
	claimRounds   = 20 // claim rounds per Once
)

// Worker dispatches and delivers webhooks. Several workers (processes) may
// run against one database: claims are leased.
type Worker struct {
	st      margen.WebhookStore
	clock   margen.Clock
	log     *slog.Logger
	client  *http.Client
	timeout time.Duration
	every   time.Duration
	lease   time.Duration
	max     int
	base    time.Duration
	maxWait time.Duration
	fail    func()
	conc    int
}

// NewWorker returns a worker over the webhook store.
func NewWorker(st margen.WebhookStore, opt Options) *Worker {
	w := &Worker{st: st, clock: opt.Clock, log: opt.Logger, client: opt.Client, timeout: opt.Timeout,
		every: opt.Every, lease: opt.Lease, max: opt.MaxAttempts, base: opt.BaseBackoff,
		maxWait: opt.MaxBackoff, fail: opt.OnFailure, conc: opt.Concurrency}
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
	if w.lease <= 0 {
		w.lease = DefaultLease
	}
	w.lease = max(w.lease, w.timeout+30*time.Second)
	if w.max <= 0 {
		w.max = DefaultMaxAttempts
	}
	if w.base <= 0 {
		w.base = DefaultBaseBackoff
	}
	if w.maxWait <= 0 {
		w.maxWait = DefaultMaxBackoff
	}
	w.maxWait = max(w.maxWait, w.base)
	if w.fail == nil {
		w.fail = func() {}
	}
	if w.conc <= 0 {
		w.conc = DefaultConcurrency
	}
	return w
}

// Run works every Options.Every until ctx is done.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		if _, _, err := w.Once(ctx); err != nil && ctx.Err() == nil {
			w.log.Error("webhook: worker round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once dispatches new deliveries for every organisation with webhooks, then
// claims the due deliveries and sends them, concurrently (bounded). It
// returns how many deliveries it created and how many it delivered; err is
// the first error met (the round goes on past per-organisation errors).
func (w *Worker) Once(ctx context.Context) (dispatched, sent int, err error) {
	// A failure to dispatch does not stop the deliveries already queued.
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

	var mu sync.Mutex
	for range claimRounds {
		if ctx.Err() != nil {
			break
		}
		ds, cerr := w.st.ClaimDeliveries(ctx, w.clock.Now(), w.lease, 2*w.conc)
		if cerr != nil {
			if err == nil {
				err = cerr
			}
			break
		}
		sem := make(chan struct{}, w.conc)
		var wg sync.WaitGroup
		for i := range ds {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				ok, ferr := w.deliver(ctx, &ds[i])
				mu.Lock()
				if ok {
					sent++
				}
				if ferr != nil && err == nil {
					err = ferr
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(ds) < 2*w.conc {
			break
		}
	}
	if ctx.Err() != nil && err == nil {
		err = ctx.Err()
	}
	return dispatched, sent, err
}

// deliver makes one attempt and records it. ok reports a 2xx answer.
func (w *Worker) deliver(ctx context.Context, d *margen.Delivery) (ok bool, err error) {
	now := w.clock.Now()
	a := margen.DeliveryAttempt{At: now}
	// Neither a bad secret nor a bad URL heals by waiting: give up at once.
	// (The error texts name neither: a URL may carry credentials.)
	sig, serr := Sign(d.Secret, d.ID, now, d.Payload)
	if serr != nil {
		a.Error = "invalid signing secret"
		w.fail()
		return false, w.finish(ctx, d, a, nil)
	}
	rctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, rerr := http.NewRequestWithContext(rctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if rerr != nil {
		a.Error = "invalid URL"
		w.fail()
		return false, w.finish(ctx, d, a, nil)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "margen-webhooks/1")
	req.Header.Set(HeaderID, d.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)

	start := time.Now() // monotonic: a measurement, not a domain time
	resp, herr := w.client.Do(req)
	if herr == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		io.CopyN(io.Discard, resp.Body, maxDrain)
		resp.Body.Close()
		a.StatusCode = resp.StatusCode
		a.Response = clean(body)
	} else {
		if ctx.Err() != nil {
			// We are shutting down, the receiver did nothing wrong: leave
			// the attempt unrecorded; the lease expires and it is retried.
			return false, nil
		}
		a.Error = transportError(herr)
	}
	a.DurationMS = time.Since(start).Milliseconds()

	// FinishDelivery tells delivered from failed by the attempt itself (a
	// 2xx answer); next says whether to try again.
	var next *time.Time
	switch {
	case herr == nil && resp.StatusCode >= 200 && resp.StatusCode < 300:
		ok = true
	case d.Attempts < w.max:
		t := now.Add(w.backoff(d.Attempts))
		next = &t
	}
	if !ok {
		w.fail()
		w.log.Info("webhook: attempt failed", "org", d.OrgID, "delivery", d.ID, "webhook", d.WebhookID,
			"attempt", d.Attempts, "status", a.StatusCode, "err", a.Error, "final", next == nil)
	}
	return ok, w.finish(ctx, d, a, next)
}

// finish records an attempt, even while shutting down: the request was
// made and its result must not be lost.
func (w *Worker) finish(ctx context.Context, d *margen.Delivery, a margen.DeliveryAttempt, next *time.Time) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := w.st.FinishDelivery(fctx, d, a, next)
	if err != nil {
		w.log.Error("webhook: cannot record attempt", "org", d.OrgID, "delivery", d.ID, "err", err)
	}
	return err
}

// backoff is the delay before the attempt after attempt n (1-based):
// exponential (base * 2^(n-1), at most MaxBackoff) with full jitter, and a
// floor of one second so a retry never hammers a struggling receiver.
func (w *Worker) backoff(n int) time.Duration {
	ceil := w.maxWait
	if n < 1 {
		n = 1
	}
	if n-1 < 40 {
		if c := w.base << (n - 1); c > 0 && c < ceil {
			ceil = c
		}
	}
	return max(time.Duration(rand.Int64N(int64(ceil)+1)), minBackoff)
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
