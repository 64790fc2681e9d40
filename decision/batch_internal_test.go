package decision

import (
	"testing"
	"time"
)

func TestBatchLimit(t *testing.T) {
	ms, us := time.Millisecond, time.Microsecond
	for _, c := range []struct {
		per, budget time.Duration
		max, want   int
	}{
		{0, 10 * ms, 128, 128},           // nothing measured yet: count alone
		{50 * us, 10 * ms, 128, 128},     // 200 would fit: the count bounds
		{100 * us, 10 * ms, 128, 100},    // the time bounds
		{1 * ms, 10 * ms, 128, 10},       // slow decisions: small batches
		{100 * ms, 10 * ms, 128, 8},      // never below minTimedBatch
		{100 * ms, 10 * ms, 4, 4},        // nor above max
		{200 * us, 10 * ms, 1000, 50},    // a larger MaxBatch
		{time.Second, time.Hour, 10, 10}, // a generous budget
	} {
		if got := batchLimit(c.per, c.budget, c.max); got != c.want {
			t.Errorf("batchLimit(%s, %s, %d) = %d, want %d", c.per, c.budget, c.max, got, c.want)
		}
	}
}

func TestObserveBatch(t *testing.T) {
	us := time.Microsecond
	if got := observeBatch(0, 6400*us, 64); got != 100*us {
		t.Errorf("first observation = %s, want 100µs", got)
	}
	if got := observeBatch(100*us, 900*us, 1); got != 100*us {
		t.Errorf("a batch of one (mostly fsync) moved the estimate to %s", got)
	}
	got := 100 * us
	for range 100 {
		got = observeBatch(got, 200*us*64, 64)
	}
	if got < 199*us || got > 200*us {
		t.Errorf("estimate after 100 batches at 200µs = %s", got)
	}
	if got := observeBatch(100*us, 900*us*10, 10); got != 200*us {
		t.Errorf("one batch at 900µs moved 100µs to %s, want 200µs (weight 1/8)", got)
	}
}
