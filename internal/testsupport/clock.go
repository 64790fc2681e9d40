package testsupport

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/margenhq/margen"
)

// Clock is an injected clock for tests (a margen.Clock). It reads the time
// it was set to and moves forward by its step on every reading (a step of 0
// stands still; a microsecond keeps ids and times ordered), and by whatever
// the test adds. The zero Clock stands still at the zero time.
type Clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

var _ margen.Clock = (*Clock)(nil)

// NewClock returns a clock at start that moves step per reading.
func NewClock(start time.Time, step time.Duration) *Clock {
	return &Clock{t: start, step: step}
}

// NewClockNow returns a clock at the current time (to the microsecond, as
// the stores keep it), standing still until moved, so that budget periods
// are today's.
func NewClockNow() *Clock {
	return NewClock(time.Now().UTC().Truncate(time.Microsecond), 0)
}

// Now returns the clock's time, then moves it by its step.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Advance is Add.
func (c *Clock) Advance(d time.Duration) { c.Add(d) }

// OffsetClock runs with the wall clock plus an offset the test moves
// forward (past backoffs), for code checked against real time elsewhere
// (webhook receivers verify signatures by their own clock). The zero
// OffsetClock is the wall clock.
type OffsetClock struct{ off atomic.Int64 }

var _ margen.Clock = (*OffsetClock)(nil)

// Now returns the wall-clock time plus the offset.
func (c *OffsetClock) Now() time.Time {
	return margen.SystemClock{}.Now().Add(time.Duration(c.off.Load()))
}

// Add moves the offset forward by d.
func (c *OffsetClock) Add(d time.Duration) { c.off.Add(int64(d)) }
