package margen

import (
	"context"
	"encoding/json"
	"time"
)

// Job kinds of the operations run from the manager's desk.
const (
	// JobBackup takes one verified backup of a SQLite database into the
	// backup directory (installation-wide: OrgID is empty).
	JobBackup = "backup"
	// JobImport checks or applies an uploaded import file (payload: the
	// upload's id); its unique key is the upload id and the step.
	JobImport = "import"
	// JobPurgeUploads expires uploads left unconfirmed and deletes old
	// ones (periodic).
	JobPurgeUploads = "purge.uploads"
)

// Upload statuses: an upload is checked (a dry run) by a job, waits for
// the manager's confirmation, then is imported by another job.
const (
	UploadChecking  = "checking"  // the dry run is queued or running
	UploadChecked   = "checked"   // the dry run's report is ready: waiting for confirmation
	UploadImporting = "importing" // confirmed: the import is queued or running
	UploadDone      = "done"      // imported (Report says what was written)
	UploadFailed    = "failed"    // refused as a whole, or the job gave up (Problem says why)
)

// Upload is an import file uploaded from the manager's desk, with the
// state of its check and import. The file is kept only until the import
// ends.
type Upload struct {
	ID       string
	OrgID    string
	MemberID string // who uploaded it: the import runs with their rights
	Kind     string // ImportCustomers, ImportMembers or ImportTeams
	FileName string
	Size     int64
	Data     []byte // the file (GetUpload only; emptied once imported or failed)
	Status   string
	SkipBad  bool // confirmed to import the good lines only
	// Report is the last report (the dry run's, then the import's), JSON
	// encoded by package importer; Problem a refusal of the file as a
	// whole ({"key":…,"args":{…}}), or empty.
	Report  json.RawMessage
	Problem json.RawMessage
	// Done and Total count the records written so far by the import.
	Done, Total int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Final reports whether the upload has reached a final state.
func (u *Upload) Final() bool { return u.Status == UploadDone || u.Status == UploadFailed }

// UploadStore keeps the desk's import uploads; each step's job is enqueued
// in the same transaction as the step (the transactional outbox).
type UploadStore interface {
	// CreateUpload stores a new upload (status UploadChecking) and the job
	// that checks it; u.ID must be set (the job names it).
	CreateUpload(ctx context.Context, u *Upload, check *Job) error
	// GetUpload returns an upload of the organisation, with its file when
	// withData (the pages polling an upload's state do not read the file).
	GetUpload(ctx context.Context, orgID, id string, withData bool) (*Upload, error)
	// ListUploads returns the organisation's latest uploads, newest
	// first, without their files.
	ListUploads(ctx context.Context, orgID string, limit int) ([]Upload, error)
	// ConfirmUpload moves a checked upload to UploadImporting with
	// skipBad and enqueues the import job; it reports false, changing
	// nothing, when the upload is no longer waiting for confirmation.
	ConfirmUpload(ctx context.Context, orgID, id string, skipBad bool, at time.Time, imp *Job) (bool, error)
	// UpdateUpload records an upload's status, report, problem and
	// progress, changed at u.UpdatedAt (now when zero); a final status also
	// drops the file.
	UpdateUpload(ctx context.Context, u *Upload) error
	// ExpireUploads marks the uploads checked but not confirmed since
	// before as failed with problem (dropping their files) and deletes the
	// uploads last changed before deleteBefore, at most limit of each; it
	// returns how many it expired and deleted.
	ExpireUploads(ctx context.Context, before, deleteBefore time.Time, problem json.RawMessage, limit int) (expired, deleted int, err error)
	// RecentJobs returns the latest jobs of a kind by due time, latest first (the
	// desk shows the last backups' outcomes).
	RecentJobs(ctx context.Context, kind string, limit int) ([]Job, error)
}
