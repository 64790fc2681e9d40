package web

import (
	"github.com/margenhq/margen"
	"net/http"
	"strconv"

	"github.com/margenhq/margen/backup"
)

// The manager's desk: the installation's backups (backups.html). The
// backups are taken by jobs of the queue (backup.Scheduler.Kind); this
// page lists the files in --backup-dir with their recorded verification,
// the latest backup jobs and their last error, and asks for one now.
// Backups are of the whole installation, like GET /api/v1/backups/last:
// every organisation's managers see the same files (names, times, sizes).

type backupsData struct {
	backup.Overview
}

func (s *server) backupsPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "ops.backups.title", nil)
	switch r.URL.Query().Get("asked") {
	case "1":
		p.Notice = p.T("ops.backups.asked")
	case "0":
		p.Notice = p.T("ops.backups.asked_already")
	}
	s.renderBackups(w, r, http.StatusOK, p)
}

func (s *server) renderBackups(w http.ResponseWriter, r *http.Request, status int, p *page) {
	o, err := s.backups.Overview(r.Context(), s.store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.Data = backupsData{o}
	s.render(w, r, status, "backups", "", p)
}

// backupNow enqueues a backup job (at most one per minute), then shows the
// page again (post, redirect, get).
func (s *server) backupNow(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	if s.backups == nil {
		p := s.newPage(r, "ops.backups.title", nil)
		p.Error = p.T("ops.backups.not_configured")
		s.renderBackups(w, r, http.StatusConflict, p)
		return
	}
	asked, err := s.backups.Now(r.Context(), s.store)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("backup asked for", "org", current(r).org.Slug, "member", current(r).member.Login, "queued", asked)
	http.Redirect(w, r, "/desk/backups?asked="+boolDigit(asked), http.StatusSeeOther)
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Bytes writes a size in bytes the way people read it (kB, MB, GB; powers
// of 1000).
func (p *page) Bytes(n int64) string {
	const unit = 1000
	if n < unit {
		return p.T("ops.bytes.b", "n", n)
	}
	f, exp := float64(n), 0
	for f >= unit && exp < 3 {
		f /= unit
		exp++
	}
	num := strconv.FormatFloat(f, 'f', 1, 64)
	if p.Lang == "es" {
		num = replaceDot(num)
	}
	return p.T([]string{"", "ops.bytes.kb", "ops.bytes.mb", "ops.bytes.gb"}[exp], "n", num)
}

func replaceDot(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '.' {
			b[i] = ','
		}
	}
	return string(b)
}

// JobStatus names a job's status.
func (p *page) JobStatus(status string) string {
	switch status {
	case margen.JobPending:
		return p.T("ops.job.pending")
	case margen.JobDone:
		return p.T("ops.job.done")
	case margen.JobDead:
		return p.T("ops.job.dead")
	default:
		return p.T("ops.job.cancelled")
	}
}
