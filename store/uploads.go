package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/margenhq/margen"
)

var _ margen.UploadStore = (*DB)(nil)

// --- the desk's import uploads ---

const uploadCols = "id, org_id, member_id, kind, file_name, size, status, skip_bad, report, problem, done, total, created_at, updated_at"

func scanUpload(withData bool) func(scanner) (margen.Upload, error) {
	return func(s scanner) (margen.Upload, error) {
		var u margen.Upload
		var report, problem string
		dest := []any{&u.ID, &u.OrgID, &u.MemberID, &u.Kind, &u.FileName, &u.Size, &u.Status, &u.SkipBad, &report, &problem,
			&u.Done, &u.Total, tsCol{&u.CreatedAt}, tsCol{&u.UpdatedAt}}
		if withData {
			dest = append(dest, &u.Data)
		}
		err := s.Scan(dest...)
		if report != "" {
			u.Report = []byte(report)
		}
		if problem != "" {
			u.Problem = []byte(problem)
		}
		return u, err
	}
}

// CreateUpload stores a new upload and the job that checks it, in one
// transaction.
func (db *DB) CreateUpload(ctx context.Context, u *margen.Upload, check *margen.Job) error {
	if u.ID == "" {
		return errors.New("store: an upload needs its id before it is created (its check job names it)")
	}
	stamp(&u.CreatedAt)
	u.UpdatedAt, u.Status, u.Size = u.CreatedAt, margen.UploadChecking, int64(len(u.Data))
	d := db.d
	return db.writeTx(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO uploads (id, org_id, member_id, kind, file_name, size, data, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.OrgID, u.MemberID, u.Kind, u.FileName, u.Size, u.Data, u.Status, d.ts(u.CreatedAt), d.ts(u.UpdatedAt))
		if err != nil {
			return dbErr("create upload", err)
		}
		_, err = t.enqueueJobs([]margen.Job{*check}, u.CreatedAt)
		return err
	})
}

// GetUpload returns an upload of the organisation, with its file when
// withData; another organisation's upload is not found.
func (db *DB) GetUpload(ctx context.Context, orgID, id string, withData bool) (*margen.Upload, error) {
	cols := uploadCols
	if withData {
		cols += ", data"
	}
	return getOne(ctx, db, "upload", scanUpload(withData), "SELECT "+cols+" FROM uploads WHERE org_id = ? AND id = ?", orgID, id)
}

// ListUploads returns the organisation's latest uploads, newest first.
func (db *DB) ListUploads(ctx context.Context, orgID string, limit int) ([]margen.Upload, error) {
	if limit <= 0 || limit > maxLimit {
		limit = defaultLimit
	}
	return getMany(ctx, db, scanUpload(false), "SELECT "+uploadCols+" FROM uploads WHERE org_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
		orgID, limit)
}

// ConfirmUpload moves a checked upload to importing and enqueues imp, if
// the upload is still waiting for confirmation.
func (db *DB) ConfirmUpload(ctx context.Context, orgID, id string, skipBad bool, at time.Time, imp *margen.Job) (bool, error) {
	stamp(&at)
	var ok bool
	err := db.writeTx(ctx, func(t *wtx) error {
		res, err := t.exec(`UPDATE uploads SET status = ?, skip_bad = ?, done = 0, total = 0, updated_at = ?
			WHERE org_id = ? AND id = ? AND status = ?`, margen.UploadImporting, skipBad, db.d.ts(at), orgID, id, margen.UploadChecked)
		if err != nil {
			return dbErr("confirm upload", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return dbErr("confirm upload", err)
		}
		if _, err := t.enqueueJobs([]margen.Job{*imp}, at); err != nil {
			return err
		}
		ok = true
		return nil
	})
	return ok, err
}

// UpdateUpload records an upload's status, report, problem and progress;
// a final status drops the file.
func (db *DB) UpdateUpload(ctx context.Context, u *margen.Upload) error {
	stamp(&u.UpdatedAt)
	q := `UPDATE uploads SET status = ?, report = ?, problem = ?, done = ?, total = ?, updated_at = ?`
	if u.Final() {
		q += `, data = ?`
	}
	args := []any{u.Status, string(u.Report), string(u.Problem), u.Done, u.Total, db.d.ts(u.UpdatedAt)}
	if u.Final() {
		args = append(args, []byte{})
		u.Data = nil
	}
	args = append(args, u.OrgID, u.ID)
	return db.writeTx(ctx, func(t *wtx) error {
		res, err := t.exec(q+` WHERE org_id = ? AND id = ?`, args...)
		if err != nil {
			return dbErr("update upload", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			if err != nil {
				return dbErr("update upload", err)
			}
			return margen.NotFound("upload")
		}
		return nil
	})
}

// ExpireUploads expires the uploads left checked since before and deletes
// the uploads last changed before deleteBefore.
func (db *DB) ExpireUploads(ctx context.Context, before, deleteBefore time.Time, problem json.RawMessage, limit int) (expired, deleted int, err error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	d := db.d
	err = db.writeTx(ctx, func(t *wtx) error {
		res, err := t.exec(`UPDATE uploads SET status = ?, problem = ?, data = ?, updated_at = ?
			WHERE id IN (SELECT id FROM uploads WHERE status = ? AND updated_at < ? ORDER BY updated_at LIMIT ?)`,
			margen.UploadFailed, string(problem), []byte{}, d.ts(before), margen.UploadChecked, d.ts(before), limit)
		if err != nil {
			return dbErr("expire uploads", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbErr("expire uploads", err)
		}
		expired = int(n)
		res, err = t.exec(`DELETE FROM uploads WHERE id IN (SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?)`,
			d.ts(deleteBefore), limit)
		if err != nil {
			return dbErr("delete uploads", err)
		}
		n, err = res.RowsAffected()
		deleted = int(n)
		return dbErr("delete uploads", err)
	})
	return expired, deleted, err
}

// RecentJobs returns the latest jobs of a kind, newest first.
func (db *DB) RecentJobs(ctx context.Context, kind string, limit int) ([]margen.Job, error) {
	if limit <= 0 || limit > maxLimit {
		limit = defaultLimit
	}
	return getMany(ctx, db, scanJob, jobSelect+" WHERE kind = ? ORDER BY run_at DESC, id DESC LIMIT ?", kind, limit)
}
