package store

import (
	"context"
	"log/slog"

	"github.com/margenhq/margen"
)

// SetWALBehindFrames sets the log length past which the writer catches the
// checkpoint up (see checkpointer), lets it catch up at every commit, and returns a function restoring it.
func SetWALBehindFrames(n int64) (restore func()) {
	old, every := walBehindFrames, walCatchUpEvery
	walBehindFrames, walCatchUpEvery = n, 0
	return func() { walBehindFrames, walCatchUpEvery = old, every }
}

// OpenSQLiteAt opens the SQLite database at path with its schema at
// version (for upgrade tests that write rows in an older shape) and
// returns a function that migrates it up or down to another version.
func OpenSQLiteAt(ctx context.Context, path string, key margen.AuditKey, version int64) (*DB, func(int64) error, error) {
	db, err := openSQLite(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	db.connWait = DefaultConnWait
	db.log = slog.New(slog.DiscardHandler)
	db.key = key
	p, err := db.provider(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	to := func(v int64) error {
		cur, err := p.GetDBVersion(ctx)
		if err != nil {
			return err
		}
		if v < cur {
			_, err = p.DownTo(ctx, v)
		} else {
			_, err = p.UpTo(ctx, v)
		}
		return err
	}
	if err := to(version); err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, to, nil
}
