package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// walSync makes SQLite commits durable off the write connection, so the
// writer can run the next transaction while the disk syncs the last one.
//
// The write connection runs with synchronous(NORMAL): a commit appends its
// frames to the write-ahead log and returns without syncing it. Every write
// then waits here, after it has released the write connection, until a
// fdatasync(2) of the log that began after its commit has returned: that sync
// covers the commit's frames (fdatasync works on the file, whatever
// descriptor it is called on) and every commit before it, because the log is
// written in order. One sync answers every commit that was waiting when it
// began (group commit across transactions), and while it runs the writer is
// already committing the next ones, which the next sync covers.
//
// So no caller is answered before its write is on disk, as with
// synchronous(FULL); what changes is that another connection (a reader, the
// next transaction) may see a commit up to one sync before it is durable. A
// power cut in that window loses that commit, and with it every later one,
// none of which was answered yet: what survives is always a prefix of the
// log, so a budget's charges and the decisions that made them stay together.
// Checkpoints (checkpointer, synchronous FULL on its own connection) sync the
// log before they copy it into the database file, so nothing unsynced reaches
// the database file.
//
// A failed sync is not retried: after fdatasync reports an error, Linux may
// have dropped the dirty pages it could not write and a later sync would
// succeed without them. The store then refuses every further write until the
// process restarts and SQLite recovers the log from what is on disk.
type walSync struct {
	path string // the write-ahead log: the database path + "-wal"

	mu   sync.Mutex
	cond *sync.Cond
	// committed counts commits; synced is the last count a finished sync
	// covered. A commit numbered n is durable once synced >= n.
	committed, synced uint64
	syncing           bool
	err               error // sticky: the first failed sync
	f                 *os.File

	// syncFile is fdatasync (tests replace it).
	syncFile func(*os.File) error
}

func newWALSync(dbPath string) *walSync {
	w := &walSync{path: dbPath + "-wal", syncFile: fdatasync}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// commit records a commit that has just returned and gives its number; the
// writer calls it while it still holds the write connection, so numbers
// follow the log's order.
func (w *walSync) commit() uint64 {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.committed++
	return w.committed
}

// wait returns once commit n is durable, syncing the log itself when no
// sync is running. It ignores ctx on purpose: the commit is done, and a
// caller told "busy" would retry a write that is already recorded; a disk
// that does not answer stalls the writer's callers as a synchronous commit
// would.
func (w *walSync) wait(n uint64) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if w.err != nil {
			return w.err
		}
		if w.synced >= n {
			return nil
		}
		if w.syncing {
			w.cond.Wait()
			continue
		}
		// This goroutine syncs for everyone committed so far.
		w.syncing = true
		upTo := w.committed
		w.mu.Unlock()
		err := w.sync()
		w.mu.Lock()
		w.syncing = false
		if err != nil {
			w.err = fmt.Errorf("store: sync of the write-ahead log failed, so writes are refused until margen restarts: %w", err)
		} else {
			w.synced = max(w.synced, upTo)
		}
		w.cond.Broadcast()
	}
}

// durable makes every write this process has committed so far durable: for
// writes that do not go through writeTx (sessions, migrations), and for a
// read that hands back what another write stored (a replayed answer).
func (db *DB) durable() error { return db.wal.wait(db.wal.commit()) }

// failed is the error of a failed sync, which refuses every later write
// before it starts (so nothing is written that could not be made durable).
func (w *walSync) failed() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// sync runs one fdatasync of the log. The log's file is opened at the first
// sync (SQLite creates it with the first write) and its directory synced
// once, so the file's name is as durable as its content; SQLite keeps the
// same file for as long as a connection is open (it starts it over in place
// and truncates it, never renames it).
func (w *walSync) sync() error {
	if w.f == nil {
		f, err := os.Open(w.path)
		if err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(w.path)); err != nil {
			f.Close()
			return err
		}
		w.f = f
	}
	return w.syncFile(w.f)
}

func (w *walSync) close() error {
	if w == nil || w.f == nil {
		return nil
	}
	return w.f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, os.ErrInvalid) {
		return nil // a platform that cannot sync a directory
	}
	return err
}
