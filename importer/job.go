package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/jobs"
)

// An upload from the manager's desk is imported by two jobs of the queue
// (margen.JobImport): the check (a dry run whose report the manager reads)
// and, once confirmed, the import itself. Neither runs inside a request,
// so a file of 100,000 lines takes the time it needs while the page polls
// its progress.

// JobStore is what the import jobs need of the store.
type JobStore interface {
	Store
	margen.UploadStore
	OrgByID(ctx context.Context, id string) (*margen.Org, error)
	MemberByID(ctx context.Context, orgID, id string) (*margen.Member, error)
}

// jobPayload names the upload and the step.
type jobPayload struct {
	Upload string `json:"upload"`
	Apply  bool   `json:"apply,omitempty"`
}

// CheckJob is the job that checks (dry-runs) an upload.
func CheckJob(u *margen.Upload) *margen.Job { return uploadJob(u, false) }

// ApplyJob is the job that imports a confirmed upload.
func ApplyJob(u *margen.Upload) *margen.Job { return uploadJob(u, true) }

func uploadJob(u *margen.Upload, apply bool) *margen.Job {
	step := "check"
	if apply {
		step = "apply"
	}
	p, _ := json.Marshal(jobPayload{Upload: u.ID, Apply: apply}) // plain strings
	// An import that fails for a passing reason (a busy database) is
	// retried a few times; it is idempotent by key.
	return &margen.Job{Kind: margen.JobImport, OrgID: u.OrgID, Payload: p, UniqueKey: u.ID + ":" + step, MaxAttempts: 3}
}

// Tracker holds the progress of the imports running in this process: the
// import writes in one transaction, so its progress cannot be written to
// the database while it runs.
type Tracker struct {
	mu sync.Mutex
	m  map[string][2]int
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{m: map[string][2]int{}} }

// Progress returns how many records of the upload's import are written
// and how many there are, while it runs in this process.
func (t *Tracker) Progress(id string) (done, total int, ok bool) {
	if t == nil {
		return 0, 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[id]
	return p[0], p[1], ok
}

func (t *Tracker) set(id string, done, total int) {
	t.mu.Lock()
	t.m[id] = [2]int{done, total}
	t.mu.Unlock()
}

func (t *Tracker) drop(id string) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

// Job timing: an import of 100,000 customers takes seconds to tens of
// seconds on a loaded PostgreSQL; the runner's lease must be longer.
const JobTimeout = 10 * time.Minute

// Kind is the import job kind: it runs the check or the import of an
// upload with the rights of the member who uploaded it, and records the
// report (or the refusal) on the upload.
func Kind(st JobStore, tr *Tracker) jobs.Kind {
	if tr == nil {
		tr = NewTracker()
	}
	return jobs.Kind{Timeout: JobTimeout, Handler: func(ctx context.Context, a *jobs.Attempt) error {
		var p jobPayload
		if err := json.Unmarshal(a.Job.Payload, &p); err != nil || p.Upload == "" {
			return jobs.Permanent(fmt.Errorf("import job: bad payload %q", a.Job.Payload))
		}
		u, err := st.GetUpload(ctx, a.Job.OrgID, p.Upload, true)
		if margen.IsCode(err, margen.ENOTFOUND) {
			return jobs.Permanent(err)
		}
		if err != nil {
			return err
		}
		want := margen.UploadChecking
		if p.Apply {
			want = margen.UploadImporting
		}
		if u.Status != want {
			return nil // done already (a job run twice after a lost lease)
		}
		rep, err := runUpload(ctx, st, tr, u, p.Apply, a.Now)
		var me *margen.Error
		switch {
		case err == nil:
			u.Status = margen.UploadChecked
			if p.Apply {
				u.Status = margen.UploadDone
			}
			u.Problem = nil
		case errors.As(err, &me) && me.Code != margen.EUNAVAILABLE && me.Code != margen.EBUSY && me.Code != margen.EINTERNAL:
			// The file (or one of its lines, all or nothing) is refused,
			// or the uploader may no longer import: final.
			u.Status, u.Problem = margen.UploadFailed, encodeProblem(me)
		case a.Final() || ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled):
			u.Status, u.Problem = margen.UploadFailed, encodeProblem(margen.Errorf(margen.EINTERNAL, "ops.import.error.failed"))
		default:
			return err // retried
		}
		if rep != nil {
			u.Report = EncodeReport(rep)
		}
		if done, total, ok := tr.Progress(u.ID); ok {
			u.Done, u.Total = done, total
		}
		tr.drop(u.ID)
		u.UpdatedAt = a.Now
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if uerr := st.UpdateUpload(uctx, u); uerr != nil {
			return uerr
		}
		if u.Status == margen.UploadFailed && me == nil {
			return err // the job is dead-lettered with the cause
		}
		return nil
	}}
}

// runUpload runs the check or the import of an upload as its uploader.
func runUpload(ctx context.Context, st JobStore, tr *Tracker, u *margen.Upload, apply bool, now time.Time) (*Report, error) {
	org, err := st.OrgByID(ctx, u.OrgID)
	if err != nil {
		return nil, err
	}
	m, err := st.MemberByID(ctx, u.OrgID, u.MemberID)
	if margen.IsCode(err, margen.ENOTFOUND) || err == nil && (!m.Active || !margen.AccessAtLeast(m, margen.AccessManager)) {
		return nil, margen.Errorf(margen.EFORBIDDEN, "ops.import.error.uploader")
	}
	if err != nil {
		return nil, err
	}
	opt := Options{Kind: u.Kind, Org: org, Actor: m.ID, ActorAccess: m.Access, DryRun: !apply, SkipBad: u.SkipBad, Now: now}
	if apply {
		opt.Progress = func(done, total int) { tr.set(u.ID, done, total) }
	}
	return Run(ctx, st, u.Data, opt)
}

// storedReport is a Report as an upload keeps it: with each line error's
// catalogue arguments, so a page translates it in its reader's language.
type storedReport struct {
	Report
	Errors []storedError `json:"errors"`
}

type storedError struct {
	Line  int            `json:"line"`
	Field string         `json:"field,omitempty"`
	Key   string         `json:"key"`
	Args  map[string]any `json:"args,omitempty"`
}

// EncodeReport encodes a report for margen.Upload.Report.
func EncodeReport(r *Report) json.RawMessage {
	s := storedReport{Report: *r, Errors: make([]storedError, len(r.Errors))}
	for i, e := range r.Errors {
		s.Errors[i] = storedError{Line: e.Line, Field: e.Field, Key: e.Key, Args: e.Args}
	}
	return mustJSON(s)
}

// DecodeReport reads margen.Upload.Report; nil for an empty one.
func DecodeReport(b json.RawMessage) (*Report, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var s storedReport
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("importer: stored report: %w", err)
	}
	r := s.Report
	r.Errors = make([]LineError, len(s.Errors))
	for i, e := range s.Errors {
		r.Errors[i] = LineError{Line: e.Line, Field: e.Field, Key: e.Key, Args: wholeNumbers(e.Args)}
	}
	return &r, nil
}

// storedProblem is a refusal of an upload as a whole.
type storedProblem struct {
	Key  string         `json:"key"`
	Args map[string]any `json:"args,omitempty"`
}

func encodeProblem(e *margen.Error) json.RawMessage {
	return mustJSON(storedProblem{Key: e.Key, Args: e.Args})
}

// DecodeProblem reads margen.Upload.Problem: its catalogue key and
// arguments ("" for none).
func DecodeProblem(b json.RawMessage) (string, map[string]any) {
	var p storedProblem
	if len(b) == 0 || json.Unmarshal(b, &p) != nil {
		return "", nil
	}
	return p.Key, wholeNumbers(p.Args)
}

// wholeNumbers turns the whole numbers JSON decoded as float64 back into
// integers, as the catalogue's plural rules expect.
func wholeNumbers(m map[string]any) map[string]any {
	for k, v := range m {
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			m[k] = int64(f)
		}
	}
	return m
}

// Upload retention: a file checked but not confirmed within a day is
// dropped (the upload fails with ops.import.error.expired), and uploads are
// deleted, report and all, a week after their last change.
const (
	UnconfirmedFor = 24 * time.Hour
	KeepUploads    = 7 * 24 * time.Hour
)

// PurgeKind is the periodic kind (margen.JobPurgeUploads, hourly) that
// applies the upload retention in batches.
func PurgeKind(st margen.UploadStore) jobs.Kind {
	problem := encodeProblem(margen.Errorf(margen.EINVALID, "ops.import.error.expired"))
	return jobs.Kind{Every: time.Hour, Handler: func(ctx context.Context, a *jobs.Attempt) error {
		for {
			expired, deleted, err := st.ExpireUploads(ctx, a.Now.Add(-UnconfirmedFor), a.Now.Add(-KeepUploads), problem, 500)
			if err != nil || expired < 500 && deleted < 500 {
				return err
			}
		}
	}}
}
