// Package backup takes margen's scheduled backups of a SQLite database:
// one verified copy (store.BackupSQLite) every interval into a directory,
// keeping the newest few, and remembers the last result for /metrics and
// the API. It never copies a database file by hand and never writes
// anything but its own margen-*.db files in the backup directory.
//
// In `margen serve` a backup is a job of the durable queue (kind
// margen.JobBackup, see Scheduler.Kind): periodic, one job per interval
// slot whatever the number of processes, plus a catch-up at start when the
// newest backup is older than the interval, and "back up now" from the
// manager's desk. Beside each backup a small JSON file records what its
// verification found, for the desk.
package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
	"github.com/margenhq/margen/store"
)

// Result is one backup's outcome.
type Result struct {
	File     string        // full path of the backup (empty on failure)
	Bytes    int64         // its size
	Started  time.Time     // when the copy began: it holds every decision committed before
	Duration time.Duration // copy and verification
	Check    store.Verification
	Removed  []string // older backups removed to keep the newest ones
}

// prefix and suffix frame the names of scheduled backups:
// margen-20261202T031500Z.db, sorting in time order.
const (
	prefix     = "margen-"
	suffix     = ".db"
	timeLayout = "20060102T150405Z"
)

// Name is the file name of a scheduled backup started at t.
func Name(t time.Time) string { return prefix + t.UTC().Format(timeLayout) + suffix }

// Run takes one verified backup of the SQLite database dsn into dir, named
// after the time it starts, then removes the oldest scheduled backups so
// that keep remain (keep <= 0 keeps them all). A failed backup removes
// nothing.
func Run(ctx context.Context, dsn, dir string, keep int, clock margen.Clock, key margen.AuditKey) (Result, error) {
	start := clock.Now()
	res := Result{Started: start}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	file := filepath.Join(dir, Name(start))
	v, err := store.BackupSQLite(ctx, dsn, file, true, key)
	res.Check = v
	res.Duration = clock.Now().Sub(start)
	if err != nil {
		return res, fmt.Errorf("backup: %w", err)
	}
	res.File = file
	if fi, err := os.Stat(file); err == nil {
		res.Bytes = fi.Size()
	}
	res.Removed, err = prune(dir, keep)
	return res, err
}

// List returns the scheduled backups in dir, oldest first.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(n, prefix) && strings.HasSuffix(n, suffix) {
			if _, err := time.Parse(timeLayout, strings.TrimSuffix(strings.TrimPrefix(n, prefix), suffix)); err == nil {
				names = append(names, filepath.Join(dir, n))
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

func prune(dir string, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	names, err := List(dir)
	if err != nil || len(names) <= keep {
		return nil, err
	}
	old := names[:len(names)-keep]
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("backup: remove old backup: %w", err)
		}
		os.Remove(f + checkSuffix)
	}
	return old, nil
}

// Status is the last scheduled backup as the API reports it.
type Status struct {
	Configured    bool          `json:"configured"`
	Every         time.Duration `json:"-"`
	Keep          int           `json:"keep,omitempty"`
	LastAt        *time.Time    `json:"last_at,omitempty"` // when the last attempt started
	OK            bool          `json:"ok"`
	File          string        `json:"file,omitempty"` // base name of the last good backup
	Bytes         int64         `json:"bytes,omitempty"`
	DurationMS    int64         `json:"duration_ms,omitempty"`
	LastSuccessAt *time.Time    `json:"last_success_at,omitempty"`
	Failures      int64         `json:"failures"` // failed attempts since the server started
	NextAt        *time.Time    `json:"next_at,omitempty"`
}

// Options configure a Scheduler.
type Options struct {
	DSN   string        // the SQLite database
	Dir   string        // where backups go
	Every time.Duration // interval between backups
	Keep  int           // how many scheduled backups to keep
	Clock margen.Clock
	Log   *slog.Logger
	// AuditKey verifies the copy's audit trail (the key serve runs with).
	AuditKey margen.AuditKey
	// OnSuccess and OnFailure report each result (to /metrics).
	OnSuccess func(at time.Time)
	OnFailure func()
}

// Scheduler takes the scheduled backups, as jobs of the queue (Kind), and
// remembers the last result this process saw.
type Scheduler struct {
	opt    Options
	mu     sync.Mutex
	status Status
}

// NewScheduler returns a scheduler; register its Kind with a job runner.
func NewScheduler(opt Options) *Scheduler {
	if opt.Clock == nil {
		opt.Clock = margen.SystemClock{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{opt: opt, status: Status{Configured: true, Every: opt.Every, Keep: opt.Keep}}
	if opt.Every > 0 {
		now := opt.Clock.Now()
		next := s.first(now)
		if slot := now.Truncate(opt.Every).Add(opt.Every); slot.Before(next) {
			next = slot
		}
		s.status.NextAt = &next
	}
	return s
}

// Last returns the last result. A nil scheduler is "not configured".
func (s *Scheduler) Last() Status {
	if s == nil {
		return Status{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// first is when the next backup is due: one interval after the newest
// backup already in the directory, or now.
func (s *Scheduler) first(now time.Time) time.Time {
	names, err := List(s.opt.Dir)
	if err != nil || len(names) == 0 {
		return now
	}
	t, ok := takenAt(names[len(names)-1])
	if !ok || t.After(now) {
		return now
	}
	return t.Add(s.opt.Every)
}

// takenAt is the time a scheduled backup's name carries.
func takenAt(file string) (time.Time, bool) {
	t, err := time.Parse(timeLayout, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), prefix), suffix))
	return t, err == nil
}

// JobTimeout bounds one backup job: the copy and its verification of a
// large database take minutes. The runner that claims backup jobs needs a
// longer lease.
const JobTimeout = 30 * time.Minute

// Kind is the backup job kind (margen.JobBackup): periodic every interval,
// one attempt per job (a failed backup is reported, and the next slot
// tries again).
func (s *Scheduler) Kind() jobs.Kind {
	return jobs.Kind{Every: s.opt.Every, MaxAttempts: 1, Timeout: JobTimeout,
		Handler: func(ctx context.Context, a *jobs.Attempt) error {
			_, err := s.Once(ctx)
			return err
		}}
}

// Enqueuer is the part of the job queue that asks for a backup.
type Enqueuer interface {
	EnqueueJob(ctx context.Context, j *margen.Job) (bool, error)
}

// CatchUp asks for a backup now when the newest one in the directory is
// older than the interval (or there is none), so restarting the server
// never postpones a backup; at most once per interval slot across
// restarts and processes.
func (s *Scheduler) CatchUp(ctx context.Context, q Enqueuer) (bool, error) {
	now := s.opt.Clock.Now()
	if s.first(now).After(now) {
		return false, nil
	}
	return q.EnqueueJob(ctx, &margen.Job{Kind: margen.JobBackup, RunAt: now, CreatedAt: now,
		UniqueKey: "catch-up:" + now.Truncate(s.opt.Every).UTC().Format(time.RFC3339)})
}

// Now asks for a backup at once (the desk's "back up now"); asking again
// within the same minute changes nothing and reports false.
func (s *Scheduler) Now(ctx context.Context, q Enqueuer) (bool, error) {
	now := s.opt.Clock.Now()
	return q.EnqueueJob(ctx, &margen.Job{Kind: margen.JobBackup, RunAt: now, CreatedAt: now,
		UniqueKey: "now:" + now.Truncate(time.Minute).UTC().Format(time.RFC3339)})
}

// Once takes one backup now, records its result (and, beside the file,
// its verification) and reports it.
func (s *Scheduler) Once(ctx context.Context) (Result, error) {
	res, err := Run(ctx, s.opt.DSN, s.opt.Dir, s.opt.Keep, s.opt.Clock, s.opt.AuditKey)
	if err != nil && ctx.Err() != nil {
		return res, err // interrupted by the shutdown: not a failed backup
	}
	s.mu.Lock()
	at := res.Started
	next := s.opt.Clock.Now().Truncate(s.opt.Every).Add(s.opt.Every)
	s.status.NextAt = &next
	s.status.LastAt = &at
	s.status.OK = err == nil
	if err == nil {
		s.status.File = filepath.Base(res.File)
		s.status.Bytes = res.Bytes
		s.status.DurationMS = res.Duration.Milliseconds()
		s.status.LastSuccessAt = &at
	} else {
		s.status.Failures++
	}
	s.mu.Unlock()
	if err != nil {
		s.opt.Log.Error("backup failed", "dir", s.opt.Dir, "err", err)
		if s.opt.OnFailure != nil {
			s.opt.OnFailure()
		}
		return res, err
	}
	if werr := writeCheck(res); werr != nil {
		s.opt.Log.Warn("backup: cannot record the verification beside the file", "file", res.File, "err", werr)
	}
	s.opt.Log.Info("backup taken", "file", res.File, "bytes", res.Bytes, "duration", res.Duration,
		"check", res.Check.String(), "removed", len(res.Removed))
	if s.opt.OnSuccess != nil {
		s.opt.OnSuccess(at)
	}
	return res, nil
}

// checkSuffix names the file beside a backup that records its
// verification.
const checkSuffix = ".json"

// Check is what a backup's verification found, as recorded beside it.
type Check struct {
	OK         bool     `json:"ok"`
	Version    int64    `json:"schema_version"`
	Orgs       int      `json:"orgs"`
	Entries    int      `json:"ledger_entries"`
	Audit      int64    `json:"audit_entries"`
	Problems   []string `json:"problems,omitempty"`
	DurationMS int64    `json:"duration_ms"`
}

func writeCheck(res Result) error {
	v := res.Check
	b, err := json.Marshal(Check{OK: v.OK(), Version: v.Version, Orgs: v.Orgs, Entries: v.Entries, Audit: v.Audit,
		Problems: v.Problems, DurationMS: res.Duration.Milliseconds()})
	if err != nil {
		return err
	}
	return os.WriteFile(res.File+checkSuffix, b, 0o600)
}

// File is one backup in the directory, as the desk lists it.
type File struct {
	Name  string
	At    time.Time
	Bytes int64
	Check *Check // nil when no verification was recorded beside it
}

// Attempt is one recent backup job: when it ran and how it ended.
type Attempt struct {
	At     time.Time // when it was due
	Status string    // margen.JobPending, JobDone or JobDead
	Error  string
}

// Overview is the backups as the manager's desk shows them.
type Overview struct {
	Configured bool
	Status     Status
	Files      []File    // newest first
	Attempts   []Attempt // the latest backup jobs, newest first
	LastError  string    // the error of the latest failed job, if it is the latest finished one
	DirError   string    // the backup directory cannot be listed
}

// RecentJobs is the part of the job queue that lists the latest jobs.
type RecentJobs interface {
	RecentJobs(ctx context.Context, kind string, limit int) ([]margen.Job, error)
}

// recentAttempts is how many backup jobs the desk lists.
const recentAttempts = 10

// Overview lists the backups in the directory, with their recorded
// verification, and the latest backup jobs. A nil scheduler is "not
// configured".
func (s *Scheduler) Overview(ctx context.Context, q RecentJobs) (Overview, error) {
	if s == nil {
		return Overview{}, nil
	}
	o := Overview{Configured: true, Status: s.Last()}
	names, err := List(s.opt.Dir)
	if err != nil {
		o.DirError = err.Error()
	}
	for i := len(names) - 1; i >= 0; i-- {
		f := File{Name: filepath.Base(names[i])}
		f.At, _ = takenAt(names[i])
		if fi, err := os.Stat(names[i]); err == nil {
			f.Bytes = fi.Size()
		}
		if b, err := os.ReadFile(names[i] + checkSuffix); err == nil {
			var c Check
			if json.Unmarshal(b, &c) == nil {
				f.Check = &c
			}
		}
		o.Files = append(o.Files, f)
	}
	js, err := q.RecentJobs(ctx, margen.JobBackup, recentAttempts)
	if err != nil {
		return o, err
	}
	for _, j := range js {
		o.Attempts = append(o.Attempts, Attempt{At: j.RunAt, Status: j.Status, Error: j.LastError})
	}
	for _, a := range o.Attempts {
		if a.Status == margen.JobPending {
			continue
		}
		if a.Status == margen.JobDead {
			o.LastError = a.Error
		}
		break
	}
	return o, nil
}
