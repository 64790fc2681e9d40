package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/margenhq/margen"
)

// Store is what a Runner needs of the queue (margen.JobStore has it).
type Store interface {
	EnqueueJob(ctx context.Context, j *margen.Job) (bool, error)
	ClaimJobs(ctx context.Context, c margen.JobClaim) ([]margen.Job, error)
	FinishJob(ctx context.Context, j *margen.Job, r margen.JobResult) (bool, error)
}

// Handler runs one attempt of a job. It returns nil when the job is done
// and an error to have it retried (or dead-lettered after its last
// attempt; at once for a Permanent error). A handler that records the
// attempt's result in its own write, together with its own changes (see
// Attempt.Result and margen.WebhookStore.FinishDelivery), returns
// ErrRecorded.
//
// A handler must finish within its Kind's Timeout (its context says so):
// after the lease, another runner may claim the job again.
type Handler func(ctx context.Context, a *Attempt) error

// ErrRecorded tells the runner that the handler recorded the outcome.
var ErrRecorded = errors.New("jobs: outcome recorded by the handler")

// permanent marks an error that no retry can heal.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the job is dead-lettered at once instead of
// retried (a malformed payload, an invalid URL).
func Permanent(err error) error { return permanent{err} }

// Kind is how jobs of one kind run. Zero values take the defaults.
type Kind struct {
	Handler     Handler
	MaxAttempts int           // when the job names none (default 8)
	BaseBackoff time.Duration // the first retry's delay cap (default 5s)
	MaxBackoff  time.Duration // the largest retry delay (default 1h)
	// Timeout bounds one attempt (default: half the runner's lease).
	Timeout time.Duration
	// Every, when set, makes the kind periodic: the runner enqueues one job
	// per period slot (at each multiple of Every), once across runners.
	Every time.Duration
}

// Defaults.
const (
	DefaultPoll        = time.Second
	DefaultLease       = time.Minute
	DefaultConcurrency = 16
	DefaultDrain       = 10 * time.Second
	DefaultMaxAttempts = 8
	DefaultBaseBackoff = 5 * time.Second
	DefaultMaxBackoff  = time.Hour

	finishTimeout = 10 * time.Second
)

// Options tune a Runner. Zero values take the defaults.
type Options struct {
	Clock  margen.Clock
	Logger *slog.Logger
	// Owner names this runner in leases (default host:pid).
	Owner string
	// Poll is how often Run looks for due jobs when idle (default 1s).
	Poll time.Duration
	// Lease is how long a claimed job is reserved (default 1m).
	Lease time.Duration
	// Concurrency bounds the attempts running at once (default 16).
	Concurrency int
	// Drain is how long Run lets running attempts finish after its
	// context ends, before cancelling them (default 10s).
	Drain time.Duration
	// Rand returns uniform numbers in [0, 1) for the backoff's jitter
	// (default math/rand/v2).
	Rand func() float64
}

// Runner claims due jobs and runs them with the handler of their kind.
type Runner struct {
	st    Store
	clock margen.Clock
	log   *slog.Logger
	owner string
	poll  time.Duration
	lease time.Duration
	conc  int
	drain time.Duration
	rand  func() float64

	mu        sync.Mutex
	kinds     map[string]Kind
	scheduled map[string]time.Time // periodic kind -> the latest slot enqueued
	wake      chan struct{}
}

// New returns a runner over the queue; register kinds before running it.
func New(st Store, opt Options) *Runner {
	r := &Runner{st: st, clock: opt.Clock, log: opt.Logger, owner: opt.Owner, poll: opt.Poll, lease: opt.Lease,
		conc: opt.Concurrency, drain: opt.Drain, rand: opt.Rand,
		kinds: map[string]Kind{}, scheduled: map[string]time.Time{}, wake: make(chan struct{}, 1)}
	if r.clock == nil {
		r.clock = margen.SystemClock{}
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.owner == "" {
		host, err := os.Hostname()
		if err != nil {
			// The owner only needs to be unique among runners: the
			// process id and the claim's own suffix still tell them apart.
			r.log.Warn("jobs: no host name for the lease owner", "err", err)
			host = "unknown"
		}
		r.owner = host + ":" + strconv.Itoa(os.Getpid())
	}
	if r.poll <= 0 {
		r.poll = DefaultPoll
	}
	if r.lease <= 0 {
		r.lease = DefaultLease
	}
	if r.conc <= 0 {
		r.conc = DefaultConcurrency
	}
	if r.drain <= 0 {
		r.drain = DefaultDrain
	}
	if r.rand == nil {
		r.rand = rand.Float64
	}
	return r
}

// Register sets the handler of a kind. Registering a kind twice, or without
// a handler, is a programming error and panics.
func (r *Runner) Register(kind string, k Kind) {
	if k.Handler == nil {
		panic("jobs: no handler for kind " + kind)
	}
	if k.MaxAttempts <= 0 {
		k.MaxAttempts = DefaultMaxAttempts
	}
	if k.BaseBackoff <= 0 {
		k.BaseBackoff = DefaultBaseBackoff
	}
	if k.MaxBackoff <= 0 {
		k.MaxBackoff = DefaultMaxBackoff
	}
	k.MaxBackoff = max(k.MaxBackoff, k.BaseBackoff)
	if k.Timeout <= 0 || k.Timeout > r.lease {
		k.Timeout = r.lease / 2
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.kinds[kind]; dup {
		panic("jobs: kind " + kind + " registered twice")
	}
	r.kinds[kind] = k
}

func (r *Runner) kindNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (r *Runner) kind(name string) (Kind, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.kinds[name]
	return k, ok
}

// Run claims and runs due jobs until ctx is done, then stops claiming,
// lets the running attempts finish for up to Options.Drain and cancels
// the rest (their jobs are claimed again when their lease runs out).
func (r *Runner) Run(ctx context.Context) {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	sem := make(chan struct{}, r.conc)
	var wg sync.WaitGroup
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for ctx.Err() == nil {
		r.schedule(ctx)
		for ctx.Err() == nil {
			free := r.conc - len(sem)
			if free == 0 {
				break
			}
			js, err := r.claim(ctx, free)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Error("jobs: claim failed", "err", err)
				}
				break
			}
			for i := range js {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-sem
						select {
						case r.wake <- struct{}{}:
						default:
						}
					}()
					r.run(work, &js[i])
				})
			}
			if len(js) < free {
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-r.wake:
		}
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(r.drain):
		r.log.Warn("jobs: cancelling attempts still running at shutdown", "after", r.drain)
		cancelWork()
		<-done
	}
}

// Once schedules the periodic kinds, claims the due jobs (up to the
// concurrency) and runs them, concurrently, until they are done. It returns
// how many it ran.
func (r *Runner) Once(ctx context.Context) (int, error) {
	r.schedule(ctx)
	js, err := r.claim(ctx, r.conc)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for i := range js {
		wg.Go(func() { r.run(ctx, &js[i]) })
	}
	wg.Wait()
	return len(js), ctx.Err()
}

func (r *Runner) claim(ctx context.Context, limit int) ([]margen.Job, error) {
	kinds := r.kindNames()
	if len(kinds) == 0 {
		return nil, nil
	}
	return r.st.ClaimJobs(ctx, margen.JobClaim{Kinds: kinds, Owner: r.owner, Now: r.clock.Now(),
		Lease: r.lease, Limit: limit})
}

// schedule enqueues the next slot of every periodic kind, once per slot
// per runner; the unique key makes it once across runners.
func (r *Runner) schedule(ctx context.Context) {
	now := r.clock.Now()
	r.mu.Lock()
	type due struct {
		kind string
		slot time.Time
	}
	var todo []due
	for name, k := range r.kinds {
		if k.Every <= 0 {
			continue
		}
		slot := now.Truncate(k.Every).Add(k.Every)
		if !r.scheduled[name].Equal(slot) {
			todo = append(todo, due{name, slot})
		}
	}
	r.mu.Unlock()
	for _, d := range todo {
		j := &margen.Job{Kind: d.kind, UniqueKey: "slot:" + d.slot.UTC().Format(time.RFC3339Nano), RunAt: d.slot, CreatedAt: now}
		if _, err := r.st.EnqueueJob(ctx, j); err != nil {
			if ctx.Err() == nil {
				r.log.Error("jobs: cannot schedule a periodic job", "kind", d.kind, "err", err)
			}
			continue
		}
		r.mu.Lock()
		r.scheduled[d.kind] = d.slot
		r.mu.Unlock()
	}
}

// run makes one attempt of j and records its result, unless the handler
// did, or the runner is shutting down (the lease then runs out and the job
// is claimed again).
func (r *Runner) run(ctx context.Context, j *margen.Job) {
	k, ok := r.kind(j.Kind)
	if !ok { // claimed only for registered kinds
		return
	}
	a := r.attempt(j, k)
	hctx, cancel := context.WithTimeout(ctx, k.Timeout)
	err := call(hctx, k.Handler, a)
	cancel()
	if errors.Is(err, ErrRecorded) {
		return
	}
	if err != nil && ctx.Err() != nil {
		return
	}
	res := a.Result(err)
	if err != nil {
		r.log.Warn("jobs: attempt failed", "kind", j.Kind, "job", j.ID, "org", j.OrgID, "attempt", j.Attempts,
			"err", err, "final", res.RetryAt == nil)
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer fcancel()
	held, ferr := r.st.FinishJob(fctx, j, res)
	switch {
	case ferr != nil:
		r.log.Error("jobs: cannot record an attempt", "kind", j.Kind, "job", j.ID, "err", ferr)
	case !held:
		r.log.Warn("jobs: the lease ran out before the attempt ended", "kind", j.Kind, "job", j.ID)
	}
}

// call runs the handler, turning a panic into an error.
func call(ctx context.Context, h Handler, a *Attempt) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("jobs: handler panicked: %v", p)
		}
	}()
	return h(ctx, a)
}

func (r *Runner) attempt(j *margen.Job, k Kind) *Attempt {
	maxAttempts := j.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = k.MaxAttempts
	}
	now := r.clock.Now()
	return &Attempt{Job: j, Now: now, Max: maxAttempts, clock: r.clock,
		retryAt: now.Add(Backoff(j.Attempts, k.BaseBackoff, k.MaxBackoff, r.rand()))}
}

// Attempt is one run of a job, as its handler sees it.
type Attempt struct {
	// Job is the claimed job (Attempts counts this attempt).
	Job *margen.Job
	// Now is when the attempt started, on the runner's clock.
	Now time.Time
	// Max is the job's attempt budget.
	Max int

	clock   margen.Clock
	retryAt time.Time
}

// Final reports whether a failure of this attempt dead-letters the job.
func (a *Attempt) Final() bool { return a.Job.Attempts >= a.Max }

// Result is the job's result for an attempt that ended with err: done when
// err is nil; otherwise retried after the backoff, or dead when the
// attempt was the last one or err is Permanent.
func (a *Attempt) Result(err error) margen.JobResult {
	res := margen.JobResult{At: a.clock.Now()}
	if err == nil {
		return res
	}
	res.Error = err.Error()
	if res.Error == "" {
		res.Error = "failed"
	}
	var p permanent
	if !a.Final() && !errors.As(err, &p) {
		t := a.retryAt
		res.RetryAt = &t
	}
	return res
}

// Backoff is the delay before the attempt after attempt n (1-based):
// exponential (base·2^(n−1), at most maxDelay) with full jitter (u, uniform
// in [0, 1), picks a point of that range), and a floor of one second (or
// base, if smaller) so a retry never hammers a struggling receiver.
func Backoff(n int, base, maxDelay time.Duration, u float64) time.Duration {
	ceil := maxDelay
	if n < 1 {
		n = 1
	}
	if n-1 < 40 {
		if c := base << (n - 1); c > 0 && c < ceil {
			ceil = c
		}
	}
	return max(time.Duration(u*float64(ceil)), min(time.Second, base))
}
