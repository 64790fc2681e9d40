package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/margenhq/margen"
)

var _ margen.JobStore = (*DB)(nil)

// maxJobError bounds the last error kept on a job.
const maxJobError = 1024

var jobCols = []string{"id", "kind", "org_id", "payload", "unique_key", "status", "attempts", "max_attempts",
	"run_at", "created_at"}

// jobReturning lists a job's columns for SELECT and RETURNING, each
// prefixed (PostgreSQL's UPDATE ... FROM needs "jobs.").
func jobReturning(prefix string) string {
	return prefix + "id, " + prefix + "kind, " + prefix + "org_id, " + prefix + "payload, COALESCE(" + prefix +
		"unique_key, ''), " + prefix + "status, " + prefix + "attempts, " + prefix + "max_attempts, " + prefix +
		"run_at, COALESCE(" + prefix + "lease_owner, ''), " + prefix + "lease_until, " + prefix + "last_error, " +
		prefix + "created_at, " + prefix + "finished_at"
}

var jobSelect = "SELECT " + jobReturning("") + " FROM jobs"

func scanJob(s scanner) (margen.Job, error) {
	var j margen.Job
	var payload string
	var until, finished *time.Time
	err := s.Scan(&j.ID, &j.Kind, &j.OrgID, &payload, &j.UniqueKey, &j.Status, &j.Attempts, &j.MaxAttempts,
		tsCol{&j.RunAt}, &j.LeaseOwner, tsNullCol{&until}, &j.LastError, tsCol{&j.CreatedAt}, tsNullCol{&finished})
	j.Payload = []byte(payload)
	if until != nil {
		j.LeaseUntil = *until
	}
	if finished != nil {
		j.FinishedAt = *finished
	}
	return j, err
}

// enqueueJobs inserts jobs in the transaction (filling their id, status
// and, when zero, run and creation times with def); a job whose unique key
// is taken is skipped. It returns how many were inserted.
func (t *wtx) enqueueJobs(jobs []margen.Job, def time.Time) (int64, error) {
	for i := range jobs {
		j := &jobs[i]
		if j.ID == "" {
			j.ID = margen.NewID("job")
		}
		if len(j.Payload) == 0 {
			j.Payload = []byte("{}")
		}
		j.Status, j.Attempts = margen.JobPending, 0
		stampAt(&j.CreatedAt, def)
		stampAt(&j.RunAt, j.CreatedAt)
	}
	d := t.db.d
	n, err := t.insertCount("jobs", jobCols, " ON CONFLICT DO NOTHING", len(jobs), func(i int, a []any) []any {
		j := &jobs[i]
		var key any
		if j.UniqueKey != "" {
			key = j.UniqueKey
		}
		return append(a, j.ID, j.Kind, j.OrgID, string(j.Payload), key, j.Status, j.Attempts, j.MaxAttempts,
			d.ts(j.RunAt), d.ts(j.CreatedAt))
	})
	return n, dbErr("enqueue jobs", err)
}

// rearmJob makes the job of (kind, unique key) due again at runAt with a
// fresh attempt budget, creating it if it does not exist (or was purged).
// A job being run keeps its lease, so no second worker takes it before the
// first one's lease runs out, but loses its claim: the running attempt can
// no longer finish it.
func (t *wtx) rearmJob(j margen.Job) error {
	d := t.db.d
	stamp(&j.RunAt)
	if len(j.Payload) == 0 {
		j.Payload = []byte("{}")
	}
	_, err := t.exec(`INSERT INTO jobs (id, kind, org_id, payload, unique_key, status, attempts, max_attempts, run_at, created_at)
		VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
		ON CONFLICT (kind, unique_key) DO UPDATE SET status = 'pending', attempts = 0, run_at = excluded.run_at,
			last_error = '', finished_at = NULL, lease_owner = NULL,
			lease_until = CASE WHEN jobs.lease_until > excluded.run_at THEN jobs.lease_until ELSE NULL END`,
		margen.NewID("job"), j.Kind, j.OrgID, string(j.Payload), j.UniqueKey, j.MaxAttempts, d.ts(j.RunAt), d.ts(j.RunAt))
	return dbErr("re-arm job", err)
}

// EnqueueJob adds a job in a transaction of its own (see enqueueJobs); it
// reports false when the job's unique key is taken. j is filled in place.
func (db *DB) EnqueueJob(ctx context.Context, j *margen.Job) (bool, error) {
	x := []margen.Job{*j}
	var n int64
	err := db.writeTx(ctx, func(t *wtx) error {
		var err error
		n, err = t.enqueueJobs(x, now())
		return err
	})
	if err != nil {
		return false, err
	}
	*j = x[0]
	return n == 1, nil
}

// ClaimJobs leases up to c.Limit due jobs of c.Kinds to one claim of
// c.Owner (the lease owner is the owner and a fresh claim id) and counts
// their attempt, oldest due first. On PostgreSQL the due rows are locked
// with FOR UPDATE SKIP LOCKED, so concurrent claimers of any process never
// get the same job; on SQLite the write transaction owns the database.
func (db *DB) ClaimJobs(ctx context.Context, c margen.JobClaim) ([]margen.Job, error) {
	if len(c.Kinds) == 0 {
		return nil, nil
	}
	if c.Limit <= 0 {
		c.Limit = defaultLimit
	}
	owner := c.Owner + "/" + margen.NewID("claim")
	nowTS, until := db.d.ts(c.Now), db.d.ts(c.Now.Add(c.Lease))
	kinds := "?" + strings.Repeat(", ?", len(c.Kinds)-1)
	due := `SELECT id FROM jobs
		WHERE status = 'pending' AND run_at <= ? AND (lease_until IS NULL OR lease_until <= ?) AND kind IN (` + kinds + `)
		ORDER BY run_at, id LIMIT ?`
	dueArgs := []any{nowTS, nowTS}
	for _, k := range c.Kinds {
		dueArgs = append(dueArgs, k)
	}
	dueArgs = append(dueArgs, c.Limit)
	var q string
	var args []any
	if db.d.pg {
		q = `WITH due AS (` + due + ` FOR UPDATE SKIP LOCKED)
			UPDATE jobs SET lease_owner = ?, lease_until = ?, attempts = jobs.attempts + 1
			FROM due WHERE jobs.id = due.id RETURNING ` + jobReturning("jobs.")
		args = append(dueArgs, owner, until) // the CTE comes first in the text
	} else {
		args = append([]any{owner, until}, dueArgs...)
		q = `UPDATE jobs SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
			WHERE id IN (` + due + `) RETURNING ` + jobReturning("")
	}
	var out []margen.Job
	err := db.writeTx(ctx, func(t *wtx) error {
		rows, err := t.query(q, args...)
		if err != nil {
			return dbErr("claim jobs", err)
		}
		out, err = collect(rows, scanJob)
		return err
	})
	if err != nil {
		return nil, err
	}
	sortJobs(out)
	return out, nil
}

// sortJobs orders claimed jobs by due time (RETURNING keeps no order).
func sortJobs(js []margen.Job) {
	slices.SortFunc(js, func(a, b margen.Job) int {
		if c := a.RunAt.Compare(b.RunAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// FinishJob records a claimed attempt's result (see finishJob).
func (db *DB) FinishJob(ctx context.Context, j *margen.Job, r margen.JobResult) (bool, error) {
	var ok bool
	err := db.writeTx(ctx, func(t *wtx) error {
		var err error
		ok, err = t.finishJob(j, r)
		return err
	})
	return ok, err
}

// finishJob marks the job done, due again at r.RetryAt, or dead, if j's
// claim still holds it (same lease owner, still pending); it reports
// whether it did. j is updated in place when it did.
func (t *wtx) finishJob(j *margen.Job, r margen.JobResult) (bool, error) {
	if j == nil || j.LeaseOwner == "" {
		return false, nil
	}
	d := t.db.d
	stamp(&r.At)
	msg := clip(r.Error, maxJobError)
	var res sql.Result
	var err error
	const guard = " WHERE id = ? AND status = 'pending' AND lease_owner = ?"
	switch {
	case r.Error == "":
		res, err = t.exec(`UPDATE jobs SET status = 'done', finished_at = ?, last_error = '', lease_owner = NULL,
			lease_until = NULL`+guard, d.ts(r.At), j.ID, j.LeaseOwner)
	case r.RetryAt != nil:
		res, err = t.exec(`UPDATE jobs SET run_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL`+guard,
			d.ts(*r.RetryAt), msg, j.ID, j.LeaseOwner)
	default:
		res, err = t.exec(`UPDATE jobs SET status = 'dead', finished_at = ?, last_error = ?, lease_owner = NULL,
			lease_until = NULL`+guard, d.ts(r.At), msg, j.ID, j.LeaseOwner)
	}
	if err != nil {
		return false, dbErr("finish job", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, dbErr("finish job", err)
	}
	j.LastError, j.LeaseOwner, j.LeaseUntil = msg, "", time.Time{}
	switch {
	case r.Error == "":
		j.Status, j.FinishedAt = margen.JobDone, r.At
	case r.RetryAt != nil:
		j.RunAt = r.RetryAt.UTC().Truncate(time.Microsecond)
	default:
		j.Status, j.FinishedAt = margen.JobDead, r.At
	}
	return true, nil
}

// GetJob returns a job by id.
func (db *DB) GetJob(ctx context.Context, id string) (*margen.Job, error) {
	return getOne(ctx, db, "job", scanJob, jobSelect+" WHERE id = ?", id)
}

// PendingJobs counts the jobs not yet finished and due at now, of every
// kind.
func (db *DB) PendingJobs(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := db.readPool().QueryRowContext(ctx, db.d.rebind("SELECT COUNT(*) FROM jobs WHERE status = 'pending' AND run_at <= ?"),
		db.d.ts(now)).Scan(&n)
	return n, dbErr("count pending jobs", err)
}

// PurgeJobs deletes up to limit done and cancelled jobs finished before
// before; dead jobs stay for inspection.
func (db *DB) PurgeJobs(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	var n int64
	err := db.writeTx(ctx, func(t *wtx) error {
		res, err := t.exec(`DELETE FROM jobs WHERE id IN (SELECT id FROM jobs
			WHERE status IN ('done', 'cancelled') AND finished_at < ? ORDER BY finished_at LIMIT ?)`,
			db.d.ts(before), limit)
		if err != nil {
			return dbErr("purge jobs", err)
		}
		n, err = res.RowsAffected()
		return dbErr("purge jobs", err)
	})
	return int(n), err
}
