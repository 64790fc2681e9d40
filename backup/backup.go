// Package backup takes margen's scheduled backups of a SQLite database:
// one verified copy (store.BackupSQLite) every interval into a directory,
// keeping the newest few, and remembers the last result for /metrics and
// the API. It never copies a database file by hand and never writes
// anything but its own margen-*.db files in the backup directory.
//
// It is a small loop inside `margen serve` for now; once margen has a
// durable job queue, a backup becomes a job of that queue (so only one of
// several processes takes it) and Run is what the job calls.
package backup

import (
	"context"
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

// Scheduler takes a backup every interval and remembers the last result.
type Scheduler struct {
	opt    Options
	mu     sync.Mutex
	status Status
}

// NewScheduler returns a scheduler; Run starts it.
func NewScheduler(opt Options) *Scheduler {
	if opt.Clock == nil {
		opt.Clock = margen.SystemClock{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{opt: opt, status: Status{Configured: true, Every: opt.Every, Keep: opt.Keep}}
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

// first is when the first backup is due: one interval after the newest
// backup already in the directory, or now, so restarting the server does
// not postpone backups.
func (s *Scheduler) first() time.Time {
	now := s.opt.Clock.Now()
	names, err := List(s.opt.Dir)
	if err != nil || len(names) == 0 {
		return now
	}
	newest := names[len(names)-1]
	t, err := time.Parse(timeLayout, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(newest), prefix), suffix))
	if err != nil || t.After(now) {
		return now
	}
	return t.Add(s.opt.Every)
}

// Run takes backups until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	next := s.first()
	for {
		s.mu.Lock()
		n := next
		s.status.NextAt = &n
		s.mu.Unlock()
		wait := next.Sub(s.opt.Clock.Now())
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		s.Once(ctx)
		next = s.opt.Clock.Now().Add(s.opt.Every)
	}
}

// Once takes one backup now and records its result.
func (s *Scheduler) Once(ctx context.Context) (Result, error) {
	res, err := Run(ctx, s.opt.DSN, s.opt.Dir, s.opt.Keep, s.opt.Clock, s.opt.AuditKey)
	if err != nil && ctx.Err() != nil {
		return res, err // interrupted by the shutdown: not a failed backup
	}
	s.mu.Lock()
	at := res.Started
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
	s.opt.Log.Info("backup taken", "file", res.File, "bytes", res.Bytes, "duration", res.Duration,
		"check", res.Check.String(), "removed", len(res.Removed))
	if s.opt.OnSuccess != nil {
		s.opt.OnSuccess(at)
	}
	return res, nil
}
