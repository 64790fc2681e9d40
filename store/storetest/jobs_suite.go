package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
)

// RunJobs runs the conformance suite of margen.JobStore, the durable job
// queue. newDSN returns a fresh database; tests that play two server
// processes open theirs twice.
func RunJobs(t *testing.T, newDSN func(*testing.T) string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB, reopen func() *store.DB)
	}{
		{"Enqueue", testJobEnqueue},
		{"ClaimExactlyOnce", testJobClaimExactlyOnce},
		{"LeaseExpiry", testJobLeaseExpiry},
		{"RetryBackoff", testJobRetry},
		{"DeadLetter", testJobDeadLetter},
		{"Outbox", testJobOutbox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dsn := newDSN(t)
			tt.fn(t, open(t, dsn), func() *store.DB { return open(t, dsn) })
		})
	}
}

func claimJobs(t *testing.T, db *store.DB, owner string, at time.Time, lease time.Duration, limit int, kinds ...string) []margen.Job {
	t.Helper()
	js, err := db.ClaimJobs(ctxT(t), margen.JobClaim{Kinds: kinds, Owner: owner, Now: at, Lease: lease, Limit: limit})
	if err != nil {
		t.Fatalf("ClaimJobs: %v", err)
	}
	return js
}

func enqueue(t *testing.T, db *store.DB, j margen.Job) margen.Job {
	t.Helper()
	ok, err := db.EnqueueJob(ctxT(t), &j)
	if err != nil || !ok {
		t.Fatalf("EnqueueJob(%+v) = %v, %v", j, ok, err)
	}
	return j
}

// testJobEnqueue: a job is stored as given; a unique key is taken once per
// kind; a claim takes only the kinds it names and only due jobs.
func testJobEnqueue(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	j := enqueue(t, db, margen.Job{Kind: "mail", OrgID: "org_x", Payload: []byte(`{"to":"ana"}`), UniqueKey: "k1",
		MaxAttempts: 3, RunAt: clockAt, CreatedAt: clockAt})
	g, err := db.GetJob(ctx, j.ID)
	if err != nil || g.Kind != "mail" || g.OrgID != "org_x" || string(g.Payload) != `{"to":"ana"}` || g.UniqueKey != "k1" ||
		g.Status != margen.JobPending || g.Attempts != 0 || g.MaxAttempts != 3 || !g.RunAt.Equal(clockAt) ||
		g.LeaseOwner != "" || !g.LeaseUntil.IsZero() || !g.FinishedAt.IsZero() {
		t.Fatalf("GetJob = %+v, %v", g, err)
	}
	dup := margen.Job{Kind: "mail", UniqueKey: "k1", RunAt: clockAt}
	if ok, err := db.EnqueueJob(ctx, &dup); err != nil || ok {
		t.Fatalf("enqueue a taken key = %v, %v", ok, err)
	}
	enqueue(t, db, margen.Job{Kind: "sms", UniqueKey: "k1", RunAt: clockAt}) // another kind
	enqueue(t, db, margen.Job{Kind: "mail", RunAt: clockAt.Add(time.Hour)})  // no key: never a duplicate
	enqueue(t, db, margen.Job{Kind: "mail", RunAt: clockAt.Add(time.Hour)})
	if n, err := db.PendingJobs(ctx, clockAt.Add(time.Hour)); err != nil || n != 4 {
		t.Fatalf("PendingJobs = %d, %v", n, err)
	}
	if n, err := db.PendingJobs(ctx, clockAt); err != nil || n != 2 {
		t.Fatalf("PendingJobs due now = %d, %v (the later ones do not count)", n, err)
	}
	if _, err := db.GetJob(ctx, "job_missing"); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("GetJob(missing) = %v", err)
	}
	if js := claimJobs(t, db, "w", clockAt, 2*time.Hour, 10, "mail"); len(js) != 1 || js[0].ID != j.ID {
		t.Fatalf("claim of due mail = %+v", js)
	}
	if js := claimJobs(t, db, "w", clockAt.Add(time.Hour), time.Minute, 10, "mail"); len(js) != 2 {
		t.Fatalf("claim of later mail = %+v", js)
	}
	if js := claimJobs(t, db, "w", clockAt.Add(time.Hour), time.Minute, 10); len(js) != 0 {
		t.Fatalf("claim of no kind = %+v", js)
	}
}

// testJobClaimExactlyOnce: claimers on two store handles (two processes)
// never get the same job while its lease runs.
func testJobClaimExactlyOnce(t *testing.T, db *store.DB, reopen func() *store.DB) {
	db2 := reopen()
	const total = 300
	for i := range total {
		enqueue(t, []*store.DB{db, db2}[i%2], margen.Job{Kind: "work", UniqueKey: fmt.Sprint("w", i),
			RunAt: clockAt.Add(time.Duration(i%17) * time.Millisecond)})
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	owners := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := range 8 {
		wg.Go(func() {
			h := []*store.DB{db, db2}[c%2]
			for {
				var js []margen.Job
				err := retry(func() error {
					var err error
					js, err = h.ClaimJobs(ctxT(t), margen.JobClaim{Kinds: []string{"work"}, Owner: fmt.Sprint("runner", c),
						Now: clockAt.Add(time.Second), Lease: time.Minute, Limit: 5})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if len(js) == 0 {
					return
				}
				mu.Lock()
				for _, j := range js {
					claimed[j.ID]++
					owners[j.LeaseOwner] = true
					if j.Attempts != 1 || j.LeaseOwner == "" || !j.LeaseUntil.Equal(clockAt.Add(time.Second+time.Minute)) {
						errs <- fmt.Errorf("claimed %+v", j)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != total {
		t.Fatalf("claimed %d distinct jobs, want %d", len(claimed), total)
	}
	for id, k := range claimed {
		if k != 1 {
			t.Fatalf("job %s claimed %d times", id, k)
		}
	}
	if len(owners) < 2 {
		t.Fatalf("one claim took everything: %v", owners)
	}
}

// testJobLeaseExpiry: a job whose worker died is claimed again when its
// lease runs out, and the dead worker's claim can no longer finish it.
func testJobLeaseExpiry(t *testing.T, db *store.DB, reopen func() *store.DB) {
	ctx := ctxT(t)
	db2 := reopen()
	j := enqueue(t, db, margen.Job{Kind: "work", RunAt: clockAt})
	first := claimJobs(t, db, "dies", clockAt, 30*time.Second, 10, "work")
	if len(first) != 1 || first[0].Attempts != 1 {
		t.Fatalf("first claim = %+v", first)
	}
	if js := claimJobs(t, db2, "lives", clockAt.Add(29*time.Second), 30*time.Second, 10, "work"); len(js) != 0 {
		t.Fatalf("claimed under lease: %+v", js)
	}
	second := claimJobs(t, db2, "lives", clockAt.Add(30*time.Second), 30*time.Second, 10, "work")
	if len(second) != 1 || second[0].ID != j.ID || second[0].Attempts != 2 || second[0].LeaseOwner == first[0].LeaseOwner {
		t.Fatalf("claim after the lease = %+v", second)
	}
	// The first worker wakes up: its result no longer counts.
	if held, err := db.FinishJob(ctx, &first[0], margen.JobResult{At: clockAt.Add(31 * time.Second)}); err != nil || held {
		t.Fatalf("stale FinishJob = %v, %v", held, err)
	}
	if g, _ := db.GetJob(ctx, j.ID); g.Status != margen.JobPending || g.LeaseOwner != second[0].LeaseOwner {
		t.Fatalf("job after a stale finish = %+v", g)
	}
	if held, err := db2.FinishJob(ctx, &second[0], margen.JobResult{At: clockAt.Add(40 * time.Second)}); err != nil || !held {
		t.Fatalf("FinishJob = %v, %v", held, err)
	}
	g, err := db.GetJob(ctx, j.ID)
	if err != nil || g.Status != margen.JobDone || g.Attempts != 2 || !g.FinishedAt.Equal(clockAt.Add(40*time.Second)) || g.LeaseOwner != "" {
		t.Fatalf("done job = %+v, %v", g, err)
	}
	if js := claimJobs(t, db, "dies", clockAt.Add(time.Hour), 30*time.Second, 10, "work"); len(js) != 0 {
		t.Fatalf("a done job was claimed: %+v", js)
	}
	if held, err := db2.FinishJob(ctx, &second[0], margen.JobResult{Error: "late"}); err != nil || held {
		t.Fatalf("finishing twice = %v, %v", held, err)
	}
}

// testJobRetry: a failed attempt makes the job due again at its retry time,
// not before, with its error kept.
func testJobRetry(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	j := enqueue(t, db, margen.Job{Kind: "work", RunAt: clockAt})
	c := claimJobs(t, db, "w", clockAt, time.Minute, 1, "work")[0]
	retryAt := clockAt.Add(10 * time.Second)
	if held, err := db.FinishJob(ctx, &c, margen.JobResult{At: clockAt.Add(time.Second), Error: "receiver answered 503",
		RetryAt: &retryAt}); err != nil || !held {
		t.Fatalf("FinishJob = %v, %v", held, err)
	}
	g, err := db.GetJob(ctx, j.ID)
	if err != nil || g.Status != margen.JobPending || !g.RunAt.Equal(retryAt) || g.LastError != "receiver answered 503" ||
		g.LeaseOwner != "" || !g.LeaseUntil.IsZero() || g.Attempts != 1 {
		t.Fatalf("job to retry = %+v, %v", g, err)
	}
	if js := claimJobs(t, db, "w", retryAt.Add(-time.Microsecond), time.Minute, 1, "work"); len(js) != 0 {
		t.Fatalf("claimed before its retry time: %+v", js)
	}
	again := claimJobs(t, db, "w", retryAt, time.Minute, 1, "work")
	if len(again) != 1 || again[0].Attempts != 2 || again[0].LastError != "receiver answered 503" {
		t.Fatalf("retry claim = %+v", again)
	}
}

// testJobDeadLetter: a failure without a retry dead-letters the job: it is
// never claimed again and stays for inspection when finished jobs are
// purged.
func testJobDeadLetter(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	dead := enqueue(t, db, margen.Job{Kind: "work", MaxAttempts: 1, RunAt: clockAt})
	done := enqueue(t, db, margen.Job{Kind: "work", RunAt: clockAt})
	for _, c := range claimJobs(t, db, "w", clockAt, time.Minute, 10, "work") {
		r := margen.JobResult{At: clockAt.Add(time.Second)}
		if c.ID == dead.ID {
			r.Error = "payload names no delivery"
		}
		if held, err := db.FinishJob(ctx, &c, r); err != nil || !held {
			t.Fatalf("FinishJob = %v, %v", held, err)
		}
	}
	g, err := db.GetJob(ctx, dead.ID)
	if err != nil || g.Status != margen.JobDead || g.LastError != "payload names no delivery" || !g.FinishedAt.Equal(clockAt.Add(time.Second)) {
		t.Fatalf("dead job = %+v, %v", g, err)
	}
	if js := claimJobs(t, db, "w", clockAt.Add(24*time.Hour), time.Minute, 10, "work"); len(js) != 0 {
		t.Fatalf("a dead job was claimed: %+v", js)
	}
	if n, err := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour)); err != nil || n != 0 {
		t.Fatalf("PendingJobs = %d, %v", n, err)
	}
	if n, err := db.PurgeJobs(ctx, clockAt.Add(time.Second), 100); err != nil || n != 0 {
		t.Fatalf("PurgeJobs before the finish time = %d, %v", n, err)
	}
	if n, err := db.PurgeJobs(ctx, clockAt.Add(time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("PurgeJobs = %d, %v", n, err)
	}
	if _, err := db.GetJob(ctx, done.ID); !margen.IsCode(err, margen.ENOTFOUND) {
		t.Fatalf("purged job: %v", err)
	}
	if _, err := db.GetJob(ctx, dead.ID); err != nil {
		t.Fatalf("the dead job was purged: %v", err)
	}
}

// testJobOutbox: a job enqueued by a write commits and rolls back with it.
func testJobOutbox(t *testing.T, db *store.DB, _ func() *store.DB) {
	ctx := ctxT(t)
	org, _ := newOrg(t, db, "outbox")
	ana := newMember(t, db, org.ID, "ana")
	q := margen.BatchQuery{OrgIDs: []string{org.ID}}
	job := func(key string) margen.Job {
		return margen.Job{Kind: "mail", OrgID: org.ID, UniqueKey: key, Payload: []byte(`{"decision":"x"}`), RunAt: clockAt}
	}
	before := snap(t, db, org.ID)
	// The last statement of the batch (idempotency, after the jobs) fails.
	err := db.DecideBatch(ctx, q, func(st *margen.BatchState) (*margen.BatchWrite, error) {
		w, err := announceFunc(org.ID, ana.ID, margen.OutcomeAllowed)(st)
		w.Jobs = append(w.Jobs, job("rolled-back"))
		k := margen.Idempotency{OrgID: org.ID, MemberID: ana.ID, Key: "dup", RequestHash: "h", Response: []byte("r")}
		w.Idem = append(w.Idem, k, k)
		return w, err
	})
	wantCode(t, err, margen.ECONFLICT, "error.idempotency_exists")
	// The decide function fails after building its write.
	boom := errors.New("boom")
	err = db.DecideBatch(ctx, q, func(st *margen.BatchState) (*margen.BatchWrite, error) {
		w, err := announceFunc(org.ID, ana.ID, margen.OutcomeAllowed)(st)
		if err != nil {
			return nil, err
		}
		w.Jobs = append(w.Jobs, job("never-written"))
		return nil, boom
	})
	if err != boom {
		t.Fatalf("DecideBatch = %v", err)
	}
	sameSnap(t, "failed batches", before, snap(t, db, org.ID))
	if n, err := db.PendingJobs(ctx, time.Now().Add(1000*time.Hour)); err != nil || n != 0 {
		t.Fatalf("jobs of rolled-back writes: %d, %v", n, err)
	}
	// Committed: the job is there, once even if the batch asks twice.
	err = db.DecideBatch(ctx, q, func(st *margen.BatchState) (*margen.BatchWrite, error) {
		w, err := announceFunc(org.ID, ana.ID, margen.OutcomeAllowed)(st)
		w.Jobs = append(w.Jobs, job("committed"), job("committed"))
		return w, err
	})
	if err != nil {
		t.Fatal(err)
	}
	js := claimJobs(t, db, "w", clockAt, time.Minute, 10, "mail")
	if len(js) != 1 || js[0].UniqueKey != "committed" || js[0].OrgID != org.ID || string(js[0].Payload) != `{"decision":"x"}` {
		t.Fatalf("jobs after the commit = %+v", js)
	}
}
