package backup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/backup"
	"github.com/margenhq/margen/decision"
	"github.com/margenhq/margen/demo"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// stepClock advances by a minute on every reading, so backups taken in a
// quick loop get distinct names.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

func openDemo(t *testing.T) (string, *store.DB, demo.Result) {
	t.Helper()
	ctx := context.Background()
	path := storetest.SQLitePath(t)
	st, err := store.Open(ctx, path, store.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	res, err := demo.Load(ctx, st, demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return path, st, res
}

// TestBackupsUnderLoad takes 20 online backups while about 200 decisions
// per second are written through the decision engine. Each backup restores
// (on another path) with the integrity check, schema version, ledger and
// audit chain verified, and holds every decision acknowledged before it
// started.
func TestBackupsUnderLoad(t *testing.T) {
	ctx := context.Background()
	path, st, res := openDemo(t)
	eng := decision.New(st, decision.Options{})
	defer eng.Close()
	camila, err := st.MemberByLogin(ctx, res.Org.ID, "camila")
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		acked []string
		fails atomic.Int64
	)
	lctx, stop := context.WithCancel(ctx)
	var load sync.WaitGroup
	load.Go(func() {
		// One decision every 5 ms: 200 per second.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		sem := make(chan struct{}, 256)
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for i := 0; ; i++ {
			select {
			case <-lctx.Done():
				return
			case <-tick.C:
			}
			sem <- struct{}{}
			inflight.Go(func() {
				defer func() { <-sem }()
				r, err := eng.Decide(context.Background(), &decision.Request{Org: res.Org, Member: camila,
					Action: "cortesia", Amount: 100, Customer: decision.CustomerInput{Ref: fmt.Sprintf("load-%d", i%50)},
					Reason: "backup load", Context: json.RawMessage(`{"order_total":1000000}`)})
				if err != nil {
					fails.Add(1)
					return
				}
				mu.Lock()
				acked = append(acked, r.Decision.ID)
				mu.Unlock()
			})
		}
	})

	type taken struct {
		file string
		ids  []string // acknowledged before the backup started
	}
	var backups []taken
	dir := t.TempDir()
	clock := &stepClock{t: time.Now()}
	started := time.Now()
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	for range 20 {
		time.Sleep(100 * time.Millisecond) // let decisions accumulate between backups
		mu.Lock()
		ids := append([]string(nil), acked...)
		mu.Unlock()
		r, err := backup.Run(ctx, path, dir, 0, clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Check.OK() {
			t.Fatalf("backup %s: %s", r.File, r.Check)
		}
		backups = append(backups, taken{r.File, ids})
	}
	stop()
	load.Wait()
	elapsed := time.Since(started)
	mu.Lock()
	written := len(acked) - before
	mu.Unlock()
	t.Logf("%d decisions acknowledged in %s during 20 backups (%.0f/s), %d failed",
		written, elapsed.Round(time.Millisecond), float64(written)/elapsed.Seconds(), fails.Load())
	if fails.Load() > 0 {
		t.Fatalf("%d decisions failed during the backups", fails.Load())
	}
	if len(backups[19].ids) <= len(backups[0].ids) {
		t.Fatal("no decision was written while the backups ran")
	}

	for i, b := range backups {
		dest := filepath.Join(t.TempDir(), "restored.db")
		v, err := store.RestoreSQLite(ctx, b.file, dest, nil)
		if err != nil {
			t.Fatalf("restore backup %d: %v", i, err)
		}
		if !v.OK() || v.Audit == 0 {
			t.Fatalf("restore backup %d: %s", i, v)
		}
		rdb, err := store.Open(ctx, dest, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range b.ids {
			if _, err := rdb.GetDecision(ctx, res.Org.ID, id); err != nil {
				rdb.Close()
				t.Fatalf("backup %d lacks decision %s, acknowledged before it started: %v", i, id, err)
			}
		}
		rdb.Close()
	}
}

// TestSchedulerKeepsNewest: backups are jobs of the queue: a catch-up at
// start when the directory is empty, "back up now" once a minute; the
// scheduler keeps the newest files with their recorded verification,
// reports the last result, and the overview lists the files and the jobs.
// A failure is counted, its job is dead with the error, and the overview
// shows that error.
func TestSchedulerKeepsNewest(t *testing.T) {
	ctx := context.Background()
	path, st, _ := openDemo(t)
	dir := t.TempDir()
	var successes, failures atomic.Int64
	clock := &stepClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	s := backup.NewScheduler(backup.Options{DSN: path, Dir: dir, Every: 6 * time.Hour, Keep: 3, Clock: clock,
		OnSuccess: func(time.Time) { successes.Add(1) }, OnFailure: func() { failures.Add(1) }})
	runner := jobs.New(st, jobs.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	runner.Register(margen.JobBackup, s.Kind())

	if ok, err := s.CatchUp(ctx, st); err != nil || !ok {
		t.Fatalf("catch-up with an empty directory: %v, %v", ok, err)
	}
	if n, err := runner.Once(ctx); err != nil || n != 1 || successes.Load() != 1 {
		t.Fatalf("ran %d jobs (%v), %d backups", n, err, successes.Load())
	}
	if ok, _ := s.CatchUp(ctx, st); ok {
		t.Fatal("a catch-up was asked for right after a backup")
	}
	for range 3 {
		if ok, err := s.Now(ctx, st); err != nil || !ok {
			t.Fatalf("back up now: %v, %v", ok, err)
		}
		if n, err := runner.Once(ctx); err != nil || n != 1 {
			t.Fatalf("ran %d jobs: %v", n, err)
		}
	}
	if successes.Load() != 4 || failures.Load() != 0 {
		t.Fatalf("%d backups, %d failures", successes.Load(), failures.Load())
	}
	names, err := backup.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 {
		t.Fatalf("%d backups kept, want 3: %v", len(names), names)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(left) != 3 {
		t.Fatalf("verification records beside the backups: %v", left)
	}
	last := s.Last()
	if !last.Configured || !last.OK || last.File != filepath.Base(names[2]) || last.LastSuccessAt == nil || last.Failures != 0 || last.NextAt == nil {
		t.Fatalf("last status %+v, newest file %s", last, names[2])
	}
	o, err := s.Overview(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Files) != 3 || o.Files[0].Name != filepath.Base(names[2]) || o.Files[0].Check == nil || !o.Files[0].Check.OK ||
		o.Files[0].Check.Audit == 0 || o.Files[0].Bytes == 0 || o.LastError != "" {
		t.Fatalf("overview %+v", o)
	}
	// The next periodic slot's job first (pending), then the four done.
	if len(o.Attempts) != 5 || o.Attempts[0].Status != margen.JobPending || o.Attempts[1].Status != margen.JobDone {
		t.Fatalf("backup jobs %+v", o.Attempts)
	}
	// The periodic slot is scheduled, not due yet.
	if n, _ := runner.Once(ctx); n != 0 {
		t.Fatalf("ran %d jobs before the next slot", n)
	}

	// A backup directory that cannot be written: counted as a failure,
	// the job is dead with the error, and the last good backup is still
	// reported.
	blocked := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocked, nil, 0o600)
	bad := backup.NewScheduler(backup.Options{DSN: path, Dir: blocked, Every: time.Hour, Keep: 3, Clock: clock,
		OnFailure: func() { failures.Add(1) }})
	badRunner := jobs.New(st, jobs.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	badRunner.Register(margen.JobBackup, bad.Kind())
	if ok, err := bad.Now(ctx, st); err != nil || !ok {
		t.Fatalf("back up now: %v, %v", ok, err)
	}
	if n, err := badRunner.Once(ctx); err != nil || n != 1 {
		t.Fatalf("ran %d jobs: %v", n, err)
	}
	if st := bad.Last(); st.OK || st.Failures != 1 || failures.Load() != 1 {
		t.Fatalf("after a failure: %+v, failures %d", st, failures.Load())
	}
	o, err = bad.Overview(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	// Two scheduled slots pending (6h and 1h kinds), then the failed job.
	if o.LastError == "" || o.DirError == "" || o.Attempts[2].Status != margen.JobDead || !strings.Contains(o.LastError, "backup") {
		t.Fatalf("overview after a failure: %+v", o)
	}
	var none *backup.Scheduler
	if none.Last().Configured {
		t.Fatal("a nil scheduler says backups are configured")
	}
	if o, err := none.Overview(ctx, st); err != nil || o.Configured {
		t.Fatalf("a nil scheduler's overview: %+v, %v", o, err)
	}
}
