package decision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/policy"
)

// MaxAmount bounds the amount of one decision (in minor units): the policy's
// own bound, far above any goodwill gesture, far below overflow when budgets
// add amounts up.
const MaxAmount = policy.MaxAmount

// Limits on free-text and context sizes, so a decision stays a small row.
const (
	maxReason   = 1000
	maxRef      = 200
	maxName     = 200
	maxContext  = 8 << 10
	maxTags     = policy.MaxCustomerTags
	maxAttempts = 5
	maxIdemKey  = 255 // as the HTTP layer's limit
)

// Options tune an Engine. Zero values take the defaults.
type Options struct {
	Clock    margen.Clock
	Logger   *slog.Logger
	MaxBatch int           // decisions per transaction (default 128)
	MaxWait  time.Duration // how long the writer waits to fill a batch (default 0: take what is waiting)
	// WriteTimeout bounds how long a decision may wait to be written: for a
	// place in the writer's queue, for the database's locks and for its
	// statements (default DefaultWriteTimeout). A decision not written by
	// then is answered with an EBUSY "error.busy" error and is not
	// recorded, so a hung database (a lock held by another session or
	// process) refuses callers quickly instead of stalling every decision.
	WriteTimeout time.Duration
	// MaxBatchTime bounds a batch by time as well as by count: the writer
	// takes no more decisions into one transaction than it can write in
	// about this long, judging by the batches before (default
	// DefaultMaxBatchTime). A decision that arrives while a batch is being
	// written waits for it, so this bounds that wait when the queue is long.
	MaxBatchTime time.Duration
	// Committed, when set, is called after each committed batch with the
	// organisations it wrote to (e.g. to wake the live-event broker).
	Committed func(orgID string)
}

// DefaultMaxBatchTime is the time bound of a batch when
// Options.MaxBatchTime is zero: a few fsyncs' worth, so a full batch of
// small decisions still fits, and a batch of slow ones is cut.
const DefaultMaxBatchTime = 10 * time.Millisecond

// DefaultWriteTimeout is the write deadline of a decision when
// Options.WriteTimeout is zero: far above a healthy commit (milliseconds),
// short enough for a person waiting at a counter.
const DefaultWriteTimeout = 5 * time.Second

// Engine evaluates and records decisions. It is safe for concurrent use.
type Engine struct {
	store     Store
	committed func(orgID string)
	clock     margen.Clock
	log       *slog.Logger
	max       int
	wait      time.Duration
	timeout   time.Duration
	batchTime time.Duration
	// perDecision estimates what one decision adds to a batch's write time
	// (a moving average over recent batches); only the writer uses it.
	perDecision time.Duration
	queue       chan *pending
	// syncing holds a place for each committed batch whose callers wait
	// for its sync (at most maxSyncing); answering counts them for Close.
	// synced is signalled each time one of those waits ends.
	syncing   chan struct{}
	synced    chan struct{}
	answering sync.WaitGroup
	done      chan struct{}
	closed    sync.Once
	stop      chan struct{}

	mu       sync.RWMutex
	policies map[string]*compiled // org id -> active policy
	loads    singleflight.Group   // org id -> a policy load in progress

	// failed counts batch transactions that failed (each attempt, before
	// any retry or split); see FailedBatches.
	failed atomic.Int64
}

// FailedBatches is how many batch transactions have failed since the
// engine started, counting every attempt that a retry or a split followed.
// Validation keeps bad requests out of the queue, so on a healthy database
// it stays at zero; metrics export it and tests assert it.
func (e *Engine) FailedBatches() int64 { return e.failed.Load() }

type compiled struct {
	version int
	pol     *policy.Policy
	budgets sync.Map // role, team, action -> []policy.Budget (see budgetsFor)
}

// CustomerInput identifies the customer of a decision; a new reference
// creates the customer.
type CustomerInput struct {
	Ref     string   `json:"ref"`
	Name    string   `json:"name,omitempty"`
	Contact string   `json:"contact,omitempty"`
	Tags    []string `json:"tags,omitempty"`
}

// Request is a member asking whether they may take an action.
type Request struct {
	Org      *margen.Org
	Member   *margen.Member
	Action   string
	Amount   int64
	Currency string // empty: the organisation's
	Customer CustomerInput
	Reason   string
	Context  json.RawMessage // a JSON object, or empty
	// AfterTheFact reports an act already done at the counter: the same
	// policy check decides how it is recorded (see evaluate).
	AfterTheFact bool

	// Idem, when set, stores an idempotency record with the decision, in
	// its transaction: the caller (the HTTP layer) checks keys, guards
	// duplicates in flight and replays answers; the engine only refuses a
	// key already recorded meanwhile (ECONFLICT "error.idempotency_exists")
	// and stores the record the caller renders from the decision.
	Idem *margen.IdemWrite[*margen.Decision]
}

// Result is the recorded decision.
type Result struct {
	Decision *margen.Decision
}

type pending struct {
	req     *Request
	pol     *compiled
	ctxMap  map[string]any
	cusID   string
	keys    []margen.OrgBudgetKey
	at      time.Time
	result  Result
	err     error
	ready   chan struct{}
	idemKey margen.IdemKey
	// deadline is when the caller stops waiting (real time, not the
	// injected clock): past it the decision is refused, not written.
	deadline time.Time
}

// Store is what the engine asks of the database (margen.Store has it): the
// batch write (committed, then made durable while the next batch is
// written), the active policy, and two reads for explanations.
type Store interface {
	CommitBatch(ctx context.Context, q margen.BatchQuery, decide func(*margen.BatchState) (*margen.BatchWrite, error)) (durable func() error, err error)
	ActivePolicy(ctx context.Context, orgID string) (*margen.PolicyVersion, error)
	ListBudgets(ctx context.Context, orgID string, f margen.BudgetFilter) ([]margen.BudgetAccount, error)
	CustomerByID(ctx context.Context, orgID, id string) (*margen.Customer, error)
}

// New starts an engine over a store. Close stops it.
func New(store Store, opt Options) *Engine {
	if opt.Clock == nil {
		opt.Clock = margen.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 128
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	if opt.MaxBatchTime <= 0 {
		opt.MaxBatchTime = DefaultMaxBatchTime
	}
	e := &Engine{
		store:     store,
		committed: opt.Committed,
		clock:     opt.Clock,
		log:       opt.Logger,
		max:       opt.MaxBatch,
		wait:      opt.MaxWait,
		timeout:   opt.WriteTimeout,
		batchTime: opt.MaxBatchTime,
		queue:     make(chan *pending, 4*opt.MaxBatch),
		syncing:   make(chan struct{}, maxSyncing),
		synced:    make(chan struct{}, 1),
		done:      make(chan struct{}),
		stop:      make(chan struct{}),
		policies:  make(map[string]*compiled),
	}
	go e.writer()
	return e
}

// Close stops accepting decisions, finishes those already queued and
// returns when the writer has stopped.
func (e *Engine) Close() {
	e.closed.Do(func() { close(e.stop) })
	<-e.done
}

// HashRequest fingerprints a request body for idempotency checks.
func HashRequest(body []byte) string {
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:])
}

// Policy returns the active compiled policy of an organisation and its
// version, from the cache or the store.
func (e *Engine) Policy(ctx context.Context, orgID string) (*policy.Policy, int, error) {
	c, err := e.policy(ctx, orgID, false)
	if err != nil {
		return nil, 0, err
	}
	return c.pol, c.version, nil
}

// noPolicyKey is the message of the error that says the organisation has
// published no policy yet.
const noPolicyKey = "error.no_policy"

// IsNoPolicy reports whether err says the organisation has no active policy
// yet (as opposed to a policy that could not be read or compiled).
func IsNoPolicy(err error) bool {
	var me *margen.Error
	return errors.As(err, &me) && me.Code == margen.ECONFLICT && me.Key == noPolicyKey
}

// Invalidate drops an organisation's cached policy (after a publish).
func (e *Engine) Invalidate(orgID string) {
	e.mu.Lock()
	delete(e.policies, orgID)
	e.mu.Unlock()
}

// policy returns the cached compiled policy; with fresh it first reads which
// version is active (another process may have published one) and compiles
// it only if the cache holds another. Concurrent loads of one organisation
// share one read and one compilation: a burst of requests on a cold cache
// would otherwise take every pooled connection at once.
func (e *Engine) policy(ctx context.Context, orgID string, fresh bool) (*compiled, error) {
	e.mu.RLock()
	c := e.policies[orgID]
	e.mu.RUnlock()
	if c != nil && !fresh {
		return c, nil
	}
	v, err, _ := e.loads.Do(orgID, func() (any, error) {
		// Shared by every caller waiting: one caller going away must not
		// fail the others.
		return e.load(context.WithoutCancel(ctx), orgID)
	})
	if err != nil {
		return nil, err
	}
	return v.(*compiled), nil
}

// load reads the active version and compiles it unless the cache holds it.
func (e *Engine) load(ctx context.Context, orgID string) (*compiled, error) {
	e.mu.RLock()
	c := e.policies[orgID]
	e.mu.RUnlock()
	pv, err := e.store.ActivePolicy(ctx, orgID)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, margen.Errorf(margen.ECONFLICT, noPolicyKey)
	}
	if err != nil {
		return nil, err
	}
	if c != nil && c.version == pv.Version {
		return c, nil
	}
	pol, err := policy.Parse([]byte(pv.Source))
	if err != nil {
		// A stored version passed validation when it was published; failing
		// now means the validator changed. Say so loudly.
		return nil, &margen.Error{Code: margen.EINTERNAL, Key: "error.internal", Err: err}
	}
	c = &compiled{version: pv.Version, pol: pol}
	e.mu.Lock()
	if old := e.policies[orgID]; old == nil || old.version <= c.version {
		e.policies[orgID] = c
	}
	e.mu.Unlock()
	return c, nil
}

// Decide evaluates a request against the active policy and records the
// decision. It returns once the decision is durable.
func (e *Engine) Decide(ctx context.Context, req *Request) (Result, error) {
	p, err := e.prepare(ctx, req)
	if err != nil {
		return Result{}, err
	}
	p.deadline = time.Now().Add(e.timeout)
	select {
	case <-e.stop:
		return Result{}, margen.Errorf(margen.EUNAVAILABLE, "error.shutting_down")
	default:
	}
	select {
	case e.queue <- p:
	default:
		// The queue is full: the writer is behind (or the database is
		// stuck). Wait for a place, but not past the deadline.
		wait := time.NewTimer(e.timeout)
		defer wait.Stop()
		select {
		case e.queue <- p:
		case <-e.stop:
			return Result{}, margen.Errorf(margen.EUNAVAILABLE, "error.shutting_down")
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-wait.C:
			return Result{}, busy(errors.New("decision: the writer's queue stayed full"))
		}
	}
	// Once queued, the decision will be written or refused whatever the
	// caller does (the writer answers it by its deadline): wait for the
	// answer so it is never acknowledged before it is durable.
	<-p.ready
	return p.result, p.err
}

// busy is the answer to a decision that could not be written in time.
func busy(cause error) error {
	return &margen.Error{Code: margen.EBUSY, Key: "error.busy", Err: cause}
}

// prepare validates a request and does the work that needs no lock, in the
// caller's goroutine: parsing the context, finding the budget accounts the
// decision may touch.
func (e *Engine) prepare(ctx context.Context, req *Request) (*pending, error) {
	if req.Org == nil || req.Member == nil {
		return nil, margen.Errorf(margen.EUNAUTHORIZED, "error.unauthorized")
	}
	if !req.Member.Active {
		return nil, margen.Errorf(margen.EFORBIDDEN, "error.member_inactive")
	}
	if err := validate(req); err != nil {
		return nil, err
	}
	c, err := e.policy(ctx, req.Org.ID, false)
	if err != nil {
		return nil, err
	}
	act, ok := c.pol.Action(req.Action)
	if !ok {
		return nil, margen.Invalid("action", "error.unknown_action", "action", req.Action)
	}
	if !act.Monetary && req.Amount != 0 {
		return nil, margen.Invalid("amount", "error.amount_not_monetary", "action", req.Action)
	}
	p := &pending{
		req:   req,
		pol:   c,
		cusID: margen.CustomerID(req.Org.ID, req.Customer.Ref),
		at:    e.clock.Now(),
		ready: make(chan struct{}),
	}
	if len(req.Context) > 0 {
		if err := json.Unmarshal(req.Context, &p.ctxMap); err != nil || p.ctxMap == nil {
			return nil, margen.Invalid("context", "error.context_object")
		}
	}
	p.keys = e.possibleKeys(c, p)
	if req.Idem != nil {
		p.idemKey = margen.IdemKey{OrgID: req.Org.ID, MemberID: req.Member.ID, Key: req.Idem.Record.Key}
	}
	return p, nil
}

// idemKey is the request's Idempotency-Key, "" without one.
func idemKey(req *Request) string {
	if req.Idem == nil {
		return ""
	}
	return req.Idem.Record.Key
}

func validate(req *Request) error {
	switch {
	case req.Action == "":
		return margen.Invalid("action", "error.required", "field", "action")
	case req.Amount < 0:
		return margen.Invalid("amount", "error.amount_negative")
	case req.Amount > MaxAmount:
		return margen.Invalid("amount", "error.amount_too_large", "max", int64(MaxAmount))
	case req.Customer.Ref == "":
		return margen.Invalid("customer.ref", "error.required", "field", "customer.ref")
	case len(req.Customer.Tags) > maxTags:
		return margen.Invalid("customer.tags", "error.too_many", "field", "customer.tags", "max", maxTags)
	case len(req.Context) > maxContext:
		return margen.Invalid("context", "error.too_long", "field", "context", "max", maxContext)
	}
	// Every string is valid, bounded text before it is queued: a string
	// the database refuses would fail the whole batch it rides in.
	texts := []struct {
		field     string
		s         string
		max       int
		multiline bool
	}{
		{"action", req.Action, maxRef, margen.TextLine},
		{"currency", req.Currency, 16, margen.TextLine},
		{"customer.ref", req.Customer.Ref, maxRef, margen.TextLine},
		{"customer.name", req.Customer.Name, maxName, margen.TextLine},
		{"customer.contact", req.Customer.Contact, maxName, margen.TextLine},
		{"reason", req.Reason, maxReason, margen.TextBlock},
		{"Idempotency-Key", idemKey(req), maxIdemKey, margen.TextLine},
	}
	for _, t := range texts {
		if err := margen.CheckText(t.field, t.s, t.max, t.multiline); err != nil {
			return err
		}
	}
	for _, tag := range req.Customer.Tags {
		if err := margen.CheckText("customer.tags", tag, policy.MaxTagLen, margen.TextLine); err != nil {
			return err
		}
	}
	if len(req.Context) > 0 {
		if err := margen.CheckJSONText("context", req.Context, maxContext); err != nil {
			return err
		}
	}
	if req.Currency != "" && req.Currency != req.Org.Currency {
		return margen.Invalid("currency", "error.currency_mismatch", "currency", req.Currency, "expected", req.Org.Currency)
	}
	return nil
}

// policyRequest builds the policy's view of a decision.
func policyRequest(p *pending, cus margen.Customer, isNew bool, loc *time.Location) *policy.Request {
	r := p.req
	return &policy.Request{
		MemberID:     r.Member.ID,
		MemberLogin:  r.Member.Login,
		Role:         r.Member.Role,
		Team:         r.Member.Team,
		CustomerID:   cus.ID,
		CustomerRef:  cus.Ref,
		CustomerTags: cus.Tags,
		CustomerNew:  isNew,
		Action:       r.Action,
		Amount:       r.Amount,
		Context:      p.ctxMap,
		At:           p.at,
		Loc:          loc,
	}
}

// writer is the one goroutine that writes decisions: it takes what is
// waiting, commits it as one batch and answers every caller once the batch
// is durable. It does not wait for that itself: while the disk syncs one
// batch, the writer commits the next (see answer).
func (e *Engine) writer() {
	defer close(e.done)
	defer e.answering.Wait()
	for {
		// A new slice each time: the last batch's callers may still be
		// waiting for its sync, in answer.
		batch := make([]*pending, 0, e.max)
		select {
		case p := <-e.queue:
			batch = append(batch, p)
		case <-e.stop:
			// Drain what was queued before the stop, then end.
			for {
				select {
				case p := <-e.queue:
					batch = append(batch, p)
					if len(batch) == e.max {
						e.commit(batch)
						batch = make([]*pending, 0, e.max)
					}
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				e.commit(batch)
			}
			return
		}
		var timer <-chan time.Time
		if e.wait > 0 {
			timer = time.After(e.wait)
		}
		limit := batchLimit(e.perDecision, e.batchTime, e.max)
		batch = e.gather(batch, limit)
	fill:
		for len(batch) < limit {
			select {
			case p := <-e.queue:
				batch = append(batch, p)
			default:
				if timer == nil {
					break fill
				}
				select {
				case p := <-e.queue:
					batch = append(batch, p)
				case <-timer:
					break fill
				}
			}
		}
		began := time.Now()
		e.commit(batch)
		e.perDecision = observeBatch(e.perDecision, time.Since(began), len(batch))
	}
}

// gather adds to batch, while an earlier batch waits for its sync, what
// arrives until that sync ends, the batch holds limit decisions, or
// MaxBatchTime has passed. A batch committed during a sync waits for the
// next sync anyway, so waiting costs its callers little, and one larger
// commit writes far fewer log pages than several small ones: each commit
// writes again every page its decisions touched, and most decisions touch
// the same few (the tables' last pages, the indexes' busiest leaves).
// Committing batches of one or two during each sync, the writer wrote
// about ten 4 KiB log pages per decision at half its maximum rate
// (docs/benchmarks.md).
func (e *Engine) gather(batch []*pending, limit int) []*pending {
	if len(e.syncing) == 0 || len(batch) >= limit {
		return batch
	}
	select { // a signal from a sync that ended before this batch began
	case <-e.synced:
	default:
	}
	deadline := time.NewTimer(e.batchTime)
	defer deadline.Stop()
	for len(batch) < limit && len(e.syncing) > 0 {
		select {
		case p := <-e.queue:
			batch = append(batch, p)
		case <-e.synced:
		case <-deadline.C:
			return batch
		}
	}
	return batch
}

// minTimedBatch is the smallest batch whose time says something about the
// cost of one decision: below it the commit's fixed cost (an fsync)
// dominates.
const minTimedBatch = 8

// batchLimit is how many decisions the next batch may take: as many as fit
// in budget at perDecision each (all of them, max, while nothing is known
// yet), never fewer than minTimedBatch, so a slow disk cannot shrink
// batches to nothing and throughput with them.
func batchLimit(perDecision, budget time.Duration, most int) int {
	if perDecision <= 0 {
		return most
	}
	return min(most, max(int(budget/perDecision), minTimedBatch))
}

// observeBatch folds the time a batch of n decisions took into the
// per-decision estimate (an exponentially weighted average, weight 1/8).
// Small batches are ignored: their time is mostly the commit's fixed cost.
func observeBatch(perDecision, took time.Duration, n int) time.Duration {
	if n < minTimedBatch {
		return perDecision
	}
	x := took / time.Duration(n)
	if perDecision <= 0 {
		return x
	}
	return perDecision + (x-perDecision)/8
}

// errStale says a batch was evaluated with an older policy than the one
// now active; the batch is retried with the new policy.
var errStale = errors.New("decision: policy changed")

// commit writes a batch, retrying transient failures. The batch must be
// written by the earliest deadline of its decisions: decisions past their
// deadline are refused without being tried, and a batch still not written
// at its deadline (the database waits on a lock, or does not answer) is
// rolled back and every caller is answered "busy". A batch that still fails
// for another reason is split in halves, each committed on its own: a
// request that makes its batch fail is isolated in about 2·log2(n)
// transactions while the others are answered, instead of n.
func (e *Engine) commit(batch []*pending) {
	now := time.Now()
	live := batch[:0] // filtered in place
	deadline := time.Time{}
	for _, p := range batch {
		if !now.Before(p.deadline) {
			p.err = busy(errors.New("decision: deadline passed in the writer's queue"))
			close(p.ready)
			continue
		}
		if live = append(live, p); deadline.IsZero() || p.deadline.Before(deadline) {
			deadline = p.deadline
		}
	}
	batch = live
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	durable, err := e.commitOnce(ctx, batch)
	for attempt := 1; err != nil && ctx.Err() == nil && attempt < maxAttempts && retryable(err); attempt++ {
		select {
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		case <-ctx.Done():
		}
		durable, err = e.commitOnce(ctx, batch)
	}
	if err != nil && ctx.Err() != nil {
		// Out of time: whatever the database said last (a cancelled
		// statement, SQLITE_BUSY, the deadline itself), nothing was
		// written. Splitting the batch would only wait again.
		e.log.Warn("decisions refused: the database did not answer in time",
			"decisions", len(batch), "timeout", e.timeout, "err", err)
		err = busy(err)
	}
	if err != nil && len(batch) > 1 && ctx.Err() == nil && !margen.IsCode(err, margen.EBUSY) {
		half := len(batch) / 2
		e.commit(batch[:half:half])
		e.commit(batch[half:])
		return
	}
	if err != nil {
		e.reply(batch, err)
		return
	}
	e.answer(batch, durable)
}

// maxSyncing bounds the committed batches waiting for their sync at once.
// One sync covers every commit before it, so while it runs the writer
// commits at most a batch or two; the bound only stops a disk that no longer
// answers from piling up goroutines: the writer then waits too, its queue
// fills, and new decisions are refused as busy at their deadline.
const maxSyncing = 8

// answer answers a committed batch's callers once durable says it is on
// disk, in a goroutine of its own, so the writer goes on to the next batch.
func (e *Engine) answer(batch []*pending, durable func() error) {
	e.syncing <- struct{}{}
	e.answering.Go(func() {
		defer func() {
			<-e.syncing
			select {
			case e.synced <- struct{}{}:
			default:
			}
		}()
		err := durable()
		if err != nil {
			err = fmt.Errorf("decision: committed but not made durable: %w", err)
		}
		e.reply(batch, err)
		if err == nil && e.committed != nil {
			last := ""
			for _, p := range batch {
				if org := p.req.Org.ID; org != last {
					e.committed(org)
					last = org
				}
			}
		}
	})
}

// reply answers every caller of a batch with err (nil: recorded).
func (e *Engine) reply(batch []*pending, err error) {
	for _, p := range batch {
		if err != nil {
			p.err = err
			if margen.ErrorCode(err) == margen.EINTERNAL {
				e.log.Error("decision not recorded", "org", p.req.Org.ID, "err", err)
			}
		}
		close(p.ready)
	}
}

func retryable(err error) bool {
	if errors.Is(err, errStale) {
		return true
	}
	var r interface{ Retryable() bool }
	return errors.As(err, &r) && r.Retryable()
}

func (e *Engine) commitOnce(ctx context.Context, batch []*pending) (durable func() error, err error) {
	q := margen.BatchQuery{}
	orgs := map[string]bool{}
	keys := map[margen.OrgBudgetKey]bool{}
	refs := map[margen.OrgRef]bool{}
	for _, p := range batch {
		org := p.req.Org.ID
		if !orgs[org] {
			orgs[org] = true
			q.OrgIDs = append(q.OrgIDs, org)
		}
		for _, k := range p.keys {
			if !keys[k] {
				keys[k] = true
				q.Budgets = append(q.Budgets, k)
			}
		}
		r := margen.OrgRef{OrgID: org, Ref: p.req.Customer.Ref}
		if !refs[r] {
			refs[r] = true
			q.Customers = append(q.Customers, r)
		}
		if p.req.Idem != nil {
			q.Idem = append(q.Idem, p.idemKey)
		}
	}
	sort.Strings(q.OrgIDs)
	sort.Slice(q.Budgets, func(i, j int) bool {
		a, b := q.Budgets[i], q.Budgets[j]
		if a.OrgID != b.OrgID {
			return a.OrgID < b.OrgID
		}
		return a.BudgetKey.Less(b.BudgetKey)
	})

	var stale []string
	durable, err = e.store.CommitBatch(ctx, q, func(st *margen.BatchState) (*margen.BatchWrite, error) {
		for _, p := range batch {
			if v := st.PolicyVersions[p.req.Org.ID]; v != p.pol.version {
				stale = append(stale, p.req.Org.ID)
			}
		}
		if len(stale) > 0 {
			return nil, errStale
		}
		return e.evaluate(batch, st)
	})
	if err != nil && !errors.Is(err, errStale) {
		e.failed.Add(1)
	}
	if errors.Is(err, errStale) {
		for _, org := range stale {
			e.Invalidate(org)
		}
		for _, p := range batch {
			c, perr := e.policy(ctx, p.req.Org.ID, false)
			if perr != nil {
				return nil, perr
			}
			p.pol = c
			p.keys = e.possibleKeys(c, p)
		}
	}
	return durable, err
}
