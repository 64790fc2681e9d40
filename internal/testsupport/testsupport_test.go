package testsupport

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	c := NewClock(t0, time.Microsecond)
	if a, b := c.Now(), c.Now(); !a.Equal(t0.Add(time.Microsecond)) || !b.Equal(t0.Add(2*time.Microsecond)) {
		t.Errorf("step clock read %v then %v", a, b)
	}
	c.Set(t0)
	c.Add(time.Hour)
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(t0.Add(time.Hour + time.Minute + time.Microsecond)) {
		t.Errorf("after Set, Add and Advance: %v", got)
	}
	still := NewClock(t0, 0)
	if still.Now() != still.Now() {
		t.Error("a clock with no step moved")
	}
	var o OffsetClock
	o.Add(time.Hour)
	if d := time.Until(o.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("offset clock is %v ahead", d)
	}
}
