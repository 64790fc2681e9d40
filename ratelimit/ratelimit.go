package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is the number of keys tracked when Options.MaxKeys is 0.
const DefaultMaxKeys = 10_000

// Options configure a Limiter.
type Options struct {
	// PerSecond is the sustained rate allowed for each key; 0 or less
	// disables the limiter (New returns nil, which allows everything).
	PerSecond float64
	// Burst is how many requests a key may make at once after being idle
	// (at least 1; default: one second's worth, rounded up).
	Burst int
	// MaxKeys bounds the keys tracked (default DefaultMaxKeys).
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limiter limits the rate of requests per key. A nil *Limiter allows every
// request. It is safe for concurrent use.
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	refill  time.Duration // time for an empty bucket to fill up again
	now     func() time.Time

	mu    sync.Mutex
	keys  map[string]*list.Element // of *entry
	order *list.List               // most recently seen first
}

type entry struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter, or nil when opt.PerSecond is not positive.
func New(opt Options) *Limiter {
	if opt.PerSecond <= 0 || math.IsNaN(opt.PerSecond) || math.IsInf(opt.PerSecond, 0) {
		return nil
	}
	if opt.Burst < 1 {
		opt.Burst = int(math.Ceil(opt.PerSecond))
	}
	if opt.MaxKeys < 1 {
		opt.MaxKeys = DefaultMaxKeys
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Limiter{
		limit:   rate.Limit(opt.PerSecond),
		burst:   opt.Burst,
		maxKeys: opt.MaxKeys,
		refill:  time.Duration(float64(opt.Burst) / opt.PerSecond * float64(time.Second)),
		now:     opt.Now,
		keys:    make(map[string]*list.Element),
		order:   list.New(),
	}
}

// Allow takes one request for key. When the key is over its rate it
// returns false and how long to wait before the next request would be
// allowed; nothing is taken then.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdle(now)
	var e *entry
	if el, found := l.keys[key]; found {
		e = el.Value.(*entry)
		l.order.MoveToFront(el)
	} else {
		for len(l.keys) >= l.maxKeys {
			l.remove(l.order.Back())
		}
		e = &entry{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
		l.keys[key] = l.order.PushFront(e)
	}
	e.seen = now
	if e.lim.AllowN(now, 1) {
		return true, 0
	}
	// Refused: how long until one token is back. The reservation is only
	// a way to ask; it is cancelled at once, so nothing is taken.
	r := e.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return false, max(d, time.Nanosecond)
}

// Len is the number of keys tracked.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// forgetIdle drops, from the least recently seen end, the keys whose bucket
// is full again: they would start afresh anyway. Each key is dropped once,
// so the cost is constant per call on average.
func (l *Limiter) forgetIdle(now time.Time) {
	for el := l.order.Back(); el != nil; el = l.order.Back() {
		if now.Sub(el.Value.(*entry).seen) < l.refill {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.keys, el.Value.(*entry).key)
	l.order.Remove(el)
}
