package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// checkpointer copies the SQLite write-ahead log back into the database file
// from its own connection, so that no decision's commit pays for it. The
// writer runs with wal_autocheckpoint(0); after each commit it pokes the
// checkpointer, which runs a PASSIVE checkpoint (it never blocks the writer
// or readers) at most every checkpointEvery. Once the whole log has been
// copied, the next writer starts the log over from its beginning, so the
// file stays small.
type checkpointer struct {
	db   *sql.DB
	wake chan struct{}
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

const checkpointEvery = 100 * time.Millisecond

func newCheckpointer(base string) (*checkpointer, error) {
	db, err := sql.Open(sqliteDriver, base+"?_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	c.done.Add(1)
	go c.loop()
	return c, nil
}

// poke asks for a checkpoint soon; it never blocks.
func (c *checkpointer) poke() {
	if c == nil {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer c.done.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		// A failed checkpoint is harmless (the log just grows until the
		// next one succeeds), so errors are not reported.
		_, _ = c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.stop) })
	c.done.Wait()
	return c.db.Close()
}
