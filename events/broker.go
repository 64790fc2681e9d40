package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/margenhq/margen"
)

// Event is one thing that happened in an organisation, as the live stream
// sends it. Seq is the audit entry it comes from (one entry may announce
// several event types, each its own Event with the same Seq).
type Event struct {
	Seq     int64            `json:"seq"`
	Type    margen.EventType `json:"type"`
	At      time.Time        `json:"at"`
	Actor   string           `json:"actor"`
	Subject string           `json:"subject"`
	// Data is the type's payload (margen.DecisionMade for decision.made,
	// and so on: see margen.EventVocabulary).
	Data margen.EventPayload `json:"data"`
	// Lagged is set on the first event a subscriber receives after the
	// broker dropped older events it was too slow to take: the client has
	// missed something and should reload what it shows.
	Lagged bool `json:"lagged,omitempty"`
}

// Options tune a Broker. Zero values take the defaults.
type Options struct {
	// Clock is accepted for symmetry with the other workers; event times
	// come from the audit trail, so the broker itself reads no clock.
	Clock  margen.Clock
	Logger *slog.Logger
	Every  time.Duration // how often to poll the audit trail (default 200ms)
	// Buffer is each subscriber's channel capacity (default 64).
	Buffer int
}

// Defaults.
const (
	DefaultEvery  = 200 * time.Millisecond
	DefaultBuffer = 64
	pollLimit     = 500 // audit entries per query
	primeTimeout  = 5 * time.Second
)

// Broker polls the audit trail of every organisation that has subscribers
// and fans the events out. It is safe for concurrent use.
//
// Slow subscribers: each subscriber has a buffered channel; when it is full
// the broker drops the oldest queued event to make room, and the next event
// the subscriber receives carries Lagged = true. The broker never blocks on
// a subscriber, so one stalled client cannot delay the others. Channels are
// closed by the cancel function Subscribe returns, or when Run ends.
type Broker struct {
	st     Trail
	clock  margen.Clock
	log    *slog.Logger
	every  time.Duration
	buffer int
	wake   chan struct{}

	mu      sync.Mutex
	orgs    map[string]*orgState
	stopped bool
}

// orgState is the cursor and subscribers of one organisation.
type orgState struct {
	id   string
	last int64 // last audit seq fanned out; -1: not primed yet
	subs map[*sub]struct{}
}

type sub struct {
	filter func(Event) bool
	// until, when set, ends the subscription (its channel is closed) when
	// an audit entry it matches passes by.
	until func(*margen.AuditEntry) bool

	mu     sync.Mutex // guards ch sends and close
	ch     chan Event
	closed bool
	lagged bool
}

// Trail is what the broker reads of the store: the audit trail
// (margen.Store has it).
type Trail interface {
	ListAudit(ctx context.Context, orgID string, afterSeq int64, limit int) ([]margen.AuditEntry, error)
	LastAuditSeq(ctx context.Context, orgID string) (int64, error)
}

// NewBroker returns a broker over a store's audit trail. Run starts it.
func NewBroker(st Trail, opt Options) *Broker {
	if opt.Clock == nil {
		opt.Clock = margen.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Every <= 0 {
		opt.Every = DefaultEvery
	}
	if opt.Buffer <= 0 {
		opt.Buffer = DefaultBuffer
	}
	return &Broker{st: st, clock: opt.Clock, log: opt.Logger, every: opt.Every, buffer: opt.Buffer,
		wake: make(chan struct{}, 1), orgs: make(map[string]*orgState)}
}

// Subscribe starts receiving the events of an organisation committed from
// now on that pass filter (nil: every event). The filter runs in the
// broker's goroutine and must be quick. The returned function unsubscribes
// and closes the channel; it may be called more than once.
//
// The first subscriber of an organisation reads where its audit trail ends
// (a few indexed queries) before Subscribe returns, so an event committed
// after Subscribe returns is never missed.
func (b *Broker) Subscribe(orgID string, filter func(Event) bool) (<-chan Event, func()) {
	return b.SubscribeUntil(orgID, filter, nil)
}

// SubscribeUntil is Subscribe for a subscriber whose right to the events
// can end: the broker closes the channel as soon as an audit entry for
// which until returns true passes by (e.g. the revocation of the
// subscriber's token or the deactivation of its member). The broker reads
// the shared trail, so a revocation made by any process ends the
// subscription within the poll interval; one made by this process, whose
// caller wakes the broker with Notify, at once. until runs in the broker's
// goroutine and must be quick.
func (b *Broker) SubscribeUntil(orgID string, filter func(Event) bool, until func(*margen.AuditEntry) bool) (<-chan Event, func()) {
	s := &sub{filter: filter, until: until, ch: make(chan Event, b.buffer)}

	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		s.close()
		return s.ch, func() {}
	}
	o := b.orgs[orgID]
	fresh := o == nil
	if fresh {
		o = &orgState{id: orgID, last: -1, subs: make(map[*sub]struct{})}
		b.orgs[orgID] = o
	}
	o.subs[s] = struct{}{}
	b.mu.Unlock()

	if fresh {
		// Prime outside the lock: other organisations' subscribers need
		// not wait for this one's queries.
		ctx, cancel := context.WithTimeout(context.Background(), primeTimeout)
		last, err := b.st.LastAuditSeq(ctx, orgID)
		cancel()
		b.mu.Lock()
		if o.last < 0 {
			if err != nil {
				// The poller primes it on its next tick; events committed
				// in between may be missed, so say so.
				b.log.Warn("events: cannot read the end of the audit trail", "org", orgID, "err", err)
			} else {
				o.last = last
			}
		}
		b.mu.Unlock()
	}

	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			if cur := b.orgs[orgID]; cur != nil {
				delete(cur.subs, s)
				if len(cur.subs) == 0 {
					delete(b.orgs, orgID)
				}
			}
			b.mu.Unlock()
			s.close()
		})
	}
}

// Notify wakes the poller now (call it after a local commit). The org id
// is accepted for callers' clarity; the poller checks every subscribed
// organisation, which costs one indexed query each.
func (b *Broker) Notify(orgID string) {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run polls until ctx is done, then closes every subscriber's channel.
func (b *Broker) Run(ctx context.Context) {
	t := time.NewTicker(b.every)
	defer t.Stop()
	defer b.stop()
	for {
		b.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.wake:
		}
	}
}

// Poll reads and fans out what was committed since the last poll, for every
// subscribed organisation. Run calls it; tests may call it directly.
func (b *Broker) Poll(ctx context.Context) {
	b.mu.Lock()
	orgs := make([]*orgState, 0, len(b.orgs))
	for _, o := range b.orgs {
		orgs = append(orgs, o)
	}
	b.mu.Unlock()
	for _, o := range orgs {
		if ctx.Err() != nil {
			return
		}
		if err := b.pollOrg(ctx, o); err != nil && ctx.Err() == nil {
			b.log.Warn("events: poll failed", "org", o.id, "err", err)
		}
	}
}

func (b *Broker) pollOrg(ctx context.Context, o *orgState) error {
	b.mu.Lock()
	last := o.last
	b.mu.Unlock()
	if last < 0 {
		l, err := b.st.LastAuditSeq(ctx, o.id)
		if err != nil {
			return err
		}
		b.mu.Lock()
		if o.last < 0 {
			o.last = l
		}
		last = o.last
		b.mu.Unlock()
	}
	for {
		entries, err := b.st.ListAudit(ctx, o.id, last, pollLimit)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		b.mu.Lock()
		subs := make([]*sub, 0, len(o.subs))
		for s := range o.subs {
			subs = append(subs, s)
		}
		b.mu.Unlock()
		for i := range entries {
			evs, err := FromAudit(&entries[i])
			if err != nil {
				// The streams go on: one entry that cannot be announced
				// must not silence the ones after it.
				b.log.Error("events: cannot announce an audit entry", "org", o.id, "seq", entries[i].Seq,
					"action", entries[i].Action, "err", err)
			}
			for _, ev := range evs {
				for _, s := range subs {
					s.send(ev)
				}
			}
			for _, s := range subs {
				if s.until != nil && s.until(&entries[i]) {
					s.close() // later sends to it are dropped
				}
			}
		}
		last = entries[len(entries)-1].Seq
		b.mu.Lock()
		o.last = last
		b.mu.Unlock()
		if len(entries) < pollLimit {
			return nil
		}
	}
}

// stop closes every subscriber; later subscriptions get a closed channel.
func (b *Broker) stop() {
	b.mu.Lock()
	b.stopped = true
	orgs := b.orgs
	b.orgs = make(map[string]*orgState)
	b.mu.Unlock()
	for _, o := range orgs {
		for s := range o.subs {
			s.close()
		}
	}
}

// FromAudit turns an audit entry into the events it announces (none for
// entries that announce nothing), each with its typed payload
// (margen.EventsOf). It fails when the entry's data does not decode.
func FromAudit(e *margen.AuditEntry) ([]Event, error) {
	payloads, err := margen.EventsOf(e)
	if err != nil || len(payloads) == 0 {
		return nil, err
	}
	out := make([]Event, len(payloads))
	for i, p := range payloads {
		out[i] = Event{Seq: e.Seq, Type: p.EventType(), At: e.At, Actor: e.Actor, Subject: e.Subject, Data: p}
	}
	return out, nil
}

func (s *sub) send(ev Event) {
	if s.filter != nil && !s.filter(ev) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.lagged {
		ev.Lagged = true
	}
	select {
	case s.ch <- ev:
		s.lagged = false
		return
	default:
	}
	// Full: drop the oldest queued event. Only this goroutine sends (under
	// s.mu), so after one receive there is room.
	select {
	case <-s.ch:
	default:
	}
	ev.Lagged = true
	select {
	case s.ch <- ev:
		s.lagged = false
	default:
		s.lagged = true
	}
}

func (s *sub) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}
