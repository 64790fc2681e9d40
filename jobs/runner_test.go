package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// clock is an injected clock moved by hand.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC).UnixMicro())
	return c
}

func (c *clock) Now() time.Time         { return time.UnixMicro(c.now.Load()).UTC() }
func (c *clock) Add(d time.Duration)    { c.now.Add(d.Microseconds()) }
func (c *clock) Set(t time.Time)        { c.now.Store(t.UnixMicro()) }
func half() float64                     { return 0.5 }
func ctxT(t *testing.T) context.Context { return t.Context() }
func eachEngine(t *testing.T, fn func(t *testing.T, db *store.DB, dsn string)) {
	t.Helper()
	for name, dsn := range map[string]func(testing.TB) string{
		store.EngineSQLite:   storetest.SQLitePath,
		store.EnginePostgres: storetest.PostgresURL,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := dsn(t)
			db, err := store.Open(context.Background(), url, store.Options{Migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			fn(t, db, url)
		})
	}
}

func job(t *testing.T, db *store.DB, id string) *margen.Job {
	t.Helper()
	j, err := db.GetJob(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestRetryThenDeadLetter: a handler that keeps failing is retried after
// its backoff, never before, and dead-lettered after its last attempt.
func TestRetryThenDeadLetter(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *store.DB, _ string) {
		ctx := ctxT(t)
		clk := newClock()
		r := jobs.New(db, jobs.Options{Clock: clk, Rand: half})
		var calls atomic.Int64
		r.Register("flaky", jobs.Kind{MaxAttempts: 3, BaseBackoff: 10 * time.Second, MaxBackoff: time.Minute,
			Handler: func(ctx context.Context, a *jobs.Attempt) error {
				calls.Add(1)
				return fmt.Errorf("attempt %d failed", a.Job.Attempts)
			}})
		j := &margen.Job{Kind: "flaky", RunAt: clk.Now()}
		if _, err := db.EnqueueJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		// Backoffs with jitter 0.5: 5s after attempt 1, 10s after attempt 2.
		for i, wait := range []time.Duration{5 * time.Second, 10 * time.Second} {
			if n, err := r.Once(ctx); err != nil || n != 1 {
				t.Fatalf("attempt %d: ran %d, %v", i+1, n, err)
			}
			g := job(t, db, j.ID)
			if g.Status != margen.JobPending || !g.RunAt.Equal(clk.Now().Add(wait)) || g.LastError != fmt.Sprintf("attempt %d failed", i+1) {
				t.Fatalf("after attempt %d: %+v", i+1, g)
			}
			clk.Add(wait - time.Microsecond)
			if n, err := r.Once(ctx); err != nil || n != 0 {
				t.Fatalf("ran %d before the backoff ended, %v", n, err)
			}
			clk.Add(time.Microsecond)
		}
		if n, err := r.Once(ctx); err != nil || n != 1 {
			t.Fatalf("last attempt: ran %d, %v", n, err)
		}
		g := job(t, db, j.ID)
		if g.Status != margen.JobDead || g.Attempts != 3 || g.LastError != "attempt 3 failed" || !g.FinishedAt.Equal(clk.Now()) {
			t.Fatalf("after the last attempt: %+v", g)
		}
		clk.Add(24 * time.Hour)
		if n, _ := r.Once(ctx); n != 0 || calls.Load() != 3 {
			t.Fatalf("a dead job ran again: %d runs, %d calls", n, calls.Load())
		}
		// A permanent error dead-letters at once; a panic is a failure.
		r.Register("broken", jobs.Kind{Handler: func(ctx context.Context, a *jobs.Attempt) error {
			return jobs.Permanent(errors.New("bad payload"))
		}})
		r.Register("panics", jobs.Kind{Handler: func(ctx context.Context, a *jobs.Attempt) error { panic("boom") }})
		b := &margen.Job{Kind: "broken", RunAt: clk.Now()}
		p := &margen.Job{Kind: "panics", RunAt: clk.Now()}
		for _, x := range []*margen.Job{b, p} {
			if _, err := db.EnqueueJob(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := r.Once(ctx); err != nil || n != 2 {
			t.Fatalf("ran %d, %v", n, err)
		}
		if g := job(t, db, b.ID); g.Status != margen.JobDead || g.Attempts != 1 {
			t.Fatalf("permanent failure: %+v", g)
		}
		if g := job(t, db, p.ID); g.Status != margen.JobPending || g.LastError != "jobs: handler panicked: boom" {
			t.Fatalf("panic: %+v", g)
		}
	})
}

// TestTwoRunnersExactlyOnce: two runners on two store handles (two
// processes) run every job exactly once.
func TestTwoRunnersExactlyOnce(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *store.DB, dsn string) {
		ctx := ctxT(t)
		db2, err := store.Open(ctx, dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		const total = 200
		for i := range total {
			if _, err := db.EnqueueJob(ctx, &margen.Job{Kind: "count", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		runs := map[string]int{}
		var done atomic.Int64
		all := make(chan struct{})
		handler := func(ctx context.Context, a *jobs.Attempt) error {
			mu.Lock()
			runs[a.Job.ID]++
			mu.Unlock()
			if done.Add(1) == total {
				close(all)
			}
			return nil
		}
		rctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i, h := range []*store.DB{db, db2} {
			r := jobs.New(h, jobs.Options{Owner: fmt.Sprint("process", i), Poll: 10 * time.Millisecond, Concurrency: 4})
			r.Register("count", jobs.Kind{Handler: handler})
			wg.Go(func() { r.Run(rctx) })
		}
		select {
		case <-all:
		case <-time.After(2 * time.Minute):
			t.Fatalf("only %d of %d jobs ran", done.Load(), total)
		}
		// Let the runners record the last results, then stop them.
		for {
			n, err := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		stop()
		wg.Wait()
		if len(runs) != total {
			t.Fatalf("%d distinct jobs ran, want %d", len(runs), total)
		}
		for id, n := range runs {
			if n != 1 {
				t.Fatalf("job %s ran %d times", id, n)
			}
		}
	})
}

// TestLeaseExpiry: a job whose worker died is run by another runner once
// the lease runs out, and not before.
func TestLeaseExpiry(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *store.DB, _ string) {
		ctx := ctxT(t)
		clk := newClock()
		j := &margen.Job{Kind: "work", RunAt: clk.Now()}
		if _, err := db.EnqueueJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		// A worker claims it and dies without a word.
		if js, err := db.ClaimJobs(ctx, margen.JobClaim{Kinds: []string{"work"}, Owner: "dead", Now: clk.Now(), Lease: time.Minute}); err != nil || len(js) != 1 {
			t.Fatalf("claim = %+v, %v", js, err)
		}
		r := jobs.New(db, jobs.Options{Clock: clk, Owner: "alive", Lease: time.Minute})
		var ran atomic.Int64
		r.Register("work", jobs.Kind{Handler: func(ctx context.Context, a *jobs.Attempt) error {
			ran.Add(1)
			return nil
		}})
		clk.Add(time.Minute - time.Second)
		if n, err := r.Once(ctx); err != nil || n != 0 {
			t.Fatalf("ran %d under the dead worker's lease, %v", n, err)
		}
		clk.Add(time.Second)
		if n, err := r.Once(ctx); err != nil || n != 1 || ran.Load() != 1 {
			t.Fatalf("ran %d after the lease, %v", n, err)
		}
		if g := job(t, db, j.ID); g.Status != margen.JobDone || g.Attempts != 2 {
			t.Fatalf("job = %+v", g)
		}
	})
}

// TestPeriodic: a periodic kind runs once per slot, whatever the number of
// runners.
func TestPeriodic(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *store.DB, _ string) {
		ctx := ctxT(t)
		clk := newClock()
		clk.Add(10 * time.Minute) // 09:10
		var runs atomic.Int64
		var rs []*jobs.Runner
		for i := range 3 {
			r := jobs.New(db, jobs.Options{Clock: clk, Owner: fmt.Sprint("r", i)})
			r.Register("hourly", jobs.Kind{Every: time.Hour, Handler: func(ctx context.Context, a *jobs.Attempt) error {
				if !a.Job.RunAt.Equal(time.Date(2026, 11, 25, 10+int(runs.Load()), 0, 0, 0, time.UTC)) {
					return fmt.Errorf("slot %v", a.Job.RunAt)
				}
				runs.Add(1)
				return nil
			}})
			rs = append(rs, r)
		}
		round := func() {
			for _, r := range rs {
				if _, err := r.Once(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		round()
		if runs.Load() != 0 {
			t.Fatal("ran before its slot")
		}
		if n, _ := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour)); n != 1 {
			t.Fatalf("%d jobs scheduled for one slot", n)
		}
		clk.Set(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
		round()
		round()
		if runs.Load() != 1 {
			t.Fatalf("ran %d times in the first slot", runs.Load())
		}
		clk.Set(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC))
		round()
		if runs.Load() != 2 {
			t.Fatalf("ran %d times after two slots", runs.Load())
		}
	})
}

// TestGracefulShutdown: Run lets a running attempt finish and records it;
// an attempt still running after the drain time is cancelled and its job
// left for its lease to run out.
func TestGracefulShutdown(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *store.DB, _ string) {
		ctx := ctxT(t)
		for _, tc := range []struct {
			name     string
			finishes bool
		}{{"finishes", true}, {"cancelled", false}} {
			j := &margen.Job{Kind: tc.name}
			if _, err := db.EnqueueJob(ctx, j); err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{})
			release := make(chan struct{})
			r := jobs.New(db, jobs.Options{Poll: 10 * time.Millisecond, Drain: 200 * time.Millisecond})
			r.Register(tc.name, jobs.Kind{Handler: func(hctx context.Context, a *jobs.Attempt) error {
				close(started)
				if tc.finishes {
					<-release
					return nil
				}
				<-hctx.Done()
				return hctx.Err()
			}})
			rctx, stop := context.WithCancel(ctx)
			ended := make(chan struct{})
			go func() {
				r.Run(rctx)
				close(ended)
			}()
			<-started
			stop()
			if tc.finishes {
				select {
				case <-ended:
					t.Fatal("Run returned while an attempt was running")
				case <-time.After(50 * time.Millisecond):
				}
				close(release)
			}
			<-ended
			g := job(t, db, j.ID)
			switch {
			case tc.finishes && g.Status != margen.JobDone:
				t.Fatalf("finished attempt not recorded: %+v", g)
			case !tc.finishes && (g.Status != margen.JobPending || g.LeaseOwner == "" || g.LastError != ""):
				t.Fatalf("cancelled attempt: %+v", g)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{1, 0.5, 2500 * time.Millisecond}, // ceil 5s
		{2, 0.5, 5 * time.Second},         // ceil 10s
		{3, 0.99, 19800 * time.Millisecond},
		{20, 0.5, 30 * time.Minute}, // capped at 1h
		{1, 0, time.Second},         // floor
		{0, 0.5, 2500 * time.Millisecond},
		{200, 0.5, 30 * time.Minute}, // no overflow
	} {
		if got := jobs.Backoff(tc.n, 5*time.Second, time.Hour, tc.u); got != tc.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", tc.n, tc.u, got, tc.want)
		}
	}
	if got := jobs.Backoff(1, 100*time.Millisecond, time.Hour, 0); got != 100*time.Millisecond {
		t.Errorf("floor with a small base = %v", got)
	}
}
