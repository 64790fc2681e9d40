package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointer copies the SQLite write-ahead log back into the database file
// from its own connection, so that no decision's commit pays for it. The
// writer runs with wal_autocheckpoint(0); after each commit it pokes the
// checkpointer, which runs a PASSIVE checkpoint (it never blocks the writer
// or readers) at most every checkpointEvery. Once the whole log has been
// copied, the next writer starts the log over from its beginning, so the
// file stays small.
//
// Under a writer that never pauses (an import, a load test, a generator of
// millions of decisions) the background checkpoint never finds the whole
// log copied before the next commit appends to it, so the log never starts
// over and grows without end (19 GB after 1.4 million decisions, seen with
// scripts/ledgerscale). When a checkpoint finds more than walBehindFrames
// frames in the log, the checkpointer marks itself behind, and the next
// writer, right after its commit and before it lets any other writer in,
// runs one PASSIVE checkpoint itself, at the first commit that finds no
// background checkpoint running: it copies what the background checkpoints
// have not copied yet (the frames of the last moments), so the log is whole
// in the database file and the following commit starts it over. That pause happens once per walBehindFrames frames of sustained
// writing, never at an ordinary pace. The writer's journal_size_limit then
// truncates the file back (see Open).
type checkpointer struct {
	db     *sql.DB
	wake   chan struct{}
	stop   chan struct{}
	done   sync.WaitGroup
	once   sync.Once
	behind atomic.Bool
	// caughtUp is when the writer last caught up (Unix nanoseconds).
	caughtUp atomic.Int64
	// run serialises the background and the writer's checkpoints on the
	// one connection.
	run sync.Mutex
}

const checkpointEvery = 100 * time.Millisecond

// walBehindFrames is the log length, in frames (pages of 4 KiB), beyond
// which the writer catches the checkpoint up itself: 4 GiB. A catch-up
// stalls the writer while it copies what the background checkpoints left
// (measured at 512 MiB with scripts/ratios.sh: the p99 at half the maximum
// rate went from 49-63 ms to 500-650 ms, catching up at most every 5 s),
// so the bound is set where only a writer that never pauses reaches it
// (an import, a generator of millions of decisions); the log's file is
// then bounded instead of filling the disk.
var walBehindFrames int64 = 1 << 20

// walCatchUpEvery spaces the writer's catch-ups.
var walCatchUpEvery = 5 * time.Second

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

// committed is called by the writer after each commit, while it still holds
// the write connection: it catches the checkpoint up when the log has grown
// past walBehindFrames, then asks for a background checkpoint; apart from
// that catch-up it never blocks.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	// Never wait for a background checkpoint in progress (copying a long
	// log and syncing the database file takes hundreds of milliseconds,
	// which every decision behind this one would wait too): catch up at
	// a commit that finds the checkpointer idle, when little is left.
	// At most once per walCatchUpEvery: a reader that keeps an old
	// snapshot open stops the log from starting over, and the log then
	// stays long however often the writer copies it.
	if c.behind.Load() && time.Since(time.Unix(0, c.caughtUp.Load())) >= walCatchUpEvery && c.run.TryLock() {
		c.caughtUp.Store(time.Now().UnixNano())
		c.checkpointLocked()
		c.run.Unlock()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// checkpoint runs one PASSIVE checkpoint and records whether the log is
// longer than walBehindFrames. A failed checkpoint is harmless (the log
// just grows until the next one succeeds), so errors are not reported.
func (c *checkpointer) checkpoint() {
	c.run.Lock()
	defer c.run.Unlock()
	c.checkpointLocked()
}

func (c *checkpointer) checkpointLocked() {
	var busy, log, copied int64
	err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied)
	// A long log is one that has not started over, whether or not this
	// checkpoint copied all of it: the writer had begun its next
	// transaction before the copy ended.
	c.behind.Store(err == nil && log > walBehindFrames)
}

func (c *checkpointer) loop() {
	defer c.done.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		c.checkpoint()
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
