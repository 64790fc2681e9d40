package store

import (
	"errors"
	"sync"

	"modernc.org/sqlite"
)

// sqliteDriver is the database/sql driver of SQLite: modernc.org/sqlite,
// pure Go, so margen builds with CGO_ENABLED=0 for any platform. The C
// SQLite of github.com/mattn/go-sqlite3 was tried behind this seam and did
// not win the same-run benchmark (docs/benchmarks.md).
const sqliteDriver = "sqlite"

// sqliteCode returns the extended result code of a SQLite error.
func sqliteCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	return 0, false
}

// syncData makes SQLite commit with fdatasync(2) instead of fsync(2), once
// per process, before the first connection opens. A commit is as durable
// either way (fdatasync writes the data and the metadata needed to read it
// back, the file's size included); fsync also pushes the file's timestamps
// through the file system's journal, which on ext4 more than triples the
// cost of a commit (0.88 against 0.27 ms on the benchmark machine,
// docs/benchmarks.md) and ties each commit to any other journal flush in
// flight, such as the checkpointer's. SQLite built by a Linux distribution
// already does this; modernc.org/sqlite keeps the amalgamation's default
// unless asked. Where the platform has no fdatasync (macOS, Windows) the
// setting stays fsync.
var syncData = sync.OnceValue(func() error {
	_, err := sqlite.Fdatasync(true)
	if errors.Is(err, sqlite.ErrFdatasyncUnavailable) {
		return nil
	}
	return err
})
