package web

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/margenhq/margen"
)

// Sign-in throttling: each account (organisation and login) and each
// client address may fail MaxFailures times in a row at once; after that
// one more attempt is allowed per FailureRefill. A right password does not
// reset an address (it may be guessing many accounts) but the account's
// bucket refills on its own.
const (
	MaxFailures   = 10
	FailureRefill = 30 * time.Second
	// maxThrottled bounds the memory: when more keys are tracked, full
	// buckets (nobody failing) are dropped, then the oldest half.
	maxThrottled = 10000
)

type throttle struct {
	clock margen.Clock
	mu    sync.Mutex
	keys  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newThrottle(c margen.Clock) *throttle {
	return &throttle{clock: c, keys: map[string]*bucket{}}
}

// wait reports how long the caller must wait before trying again with any
// of the keys (0: it may try now).
func (t *throttle) wait(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	var longest time.Duration
	for _, k := range keys {
		b, ok := t.keys[k]
		if !ok {
			continue
		}
		if tok := b.lim.TokensAt(now); tok < 1 {
			d := time.Duration((1 - tok) * float64(FailureRefill))
			longest = max(longest, d)
		}
	}
	return longest
}

// fail records a failed attempt against every key.
func (t *throttle) fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	for _, k := range keys {
		b, ok := t.keys[k]
		if !ok {
			if len(t.keys) >= maxThrottled {
				t.evict(now)
			}
			b = &bucket{lim: rate.NewLimiter(rate.Every(FailureRefill), MaxFailures)}
			t.keys[k] = b
		}
		b.seen = now
		b.lim.AllowN(now, 1)
	}
}

// evict drops the buckets that are full again; if none is, the half least
// recently seen.
func (t *throttle) evict(now time.Time) {
	for k, b := range t.keys {
		if b.lim.TokensAt(now) >= MaxFailures {
			delete(t.keys, k)
		}
	}
	if len(t.keys) < maxThrottled {
		return
	}
	var cut time.Time
	n := 0
	for _, b := range t.keys {
		if n == 0 || b.seen.Before(cut) {
			cut = b.seen
		}
		n++
	}
	// Without sorting: drop everything not seen since the midpoint between
	// the oldest and now.
	mid := cut.Add(now.Sub(cut) / 2)
	for k, b := range t.keys {
		if !b.seen.After(mid) {
			delete(t.keys, k)
		}
	}
	if len(t.keys) >= maxThrottled {
		clear(t.keys)
	}
}
