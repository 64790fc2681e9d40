package store

import (
	"errors"

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
