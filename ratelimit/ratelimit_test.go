package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)} }

func TestBurstThenRefused(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 2, Burst: 5, Now: c.now})
	for i := range 5 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("6th request: ok=%v wait=%v, want refused for 500ms", ok, wait)
	}
	// A refused request takes nothing: after the wait, one more passes.
	c.advance(wait)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refused after waiting Retry-After")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a second request passed after one refill")
	}
}

func TestKeysAreIndependent(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Burst: 2, Now: c.now})
	for range 10 {
		l.Allow("noisy")
	}
	if ok, _ := l.Allow("noisy"); ok {
		t.Fatal("noisy key not limited")
	}
	for i := range 2 {
		if ok, _ := l.Allow("quiet"); !ok {
			t.Fatalf("quiet key refused at request %d", i+1)
		}
	}
}

func TestBoundedKeys(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Burst: 1, MaxKeys: 100, Now: c.now})
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("addr-%d", i))
		if n := l.Len(); n > 100 {
			t.Fatalf("%d keys tracked after %d distinct keys, want at most 100", n, i+1)
		}
	}
	// The most recent keys are the ones kept, still limited.
	if ok, _ := l.Allow("addr-9999"); ok {
		t.Fatal("a recent key lost its state")
	}
	// Idle keys are forgotten once their bucket has refilled.
	c.advance(2 * time.Second)
	l.Allow("new")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys tracked after every other key went idle, want 1", n)
	}
}

func TestDisabled(t *testing.T) {
	var l *Limiter = New(Options{PerSecond: 0})
	if l != nil {
		t.Fatal("New with rate 0 returned a limiter")
	}
	for range 1000 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatal("a disabled limiter refused")
		}
	}
}

func TestConcurrent(t *testing.T) {
	c := newClock()
	l := New(Options{PerSecond: 1, Burst: 50, MaxKeys: 10, Now: c.now})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				ok, _ := l.Allow(fmt.Sprintf("k%d", (g*100+i)%3))
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 150 {
		t.Fatalf("%d requests allowed over 3 keys with a burst of 50 and a frozen clock, want 150", allowed)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(Options{PerSecond: 1e9, Burst: 1e9})
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		l.Allow(keys[i%len(keys)])
	}
}
