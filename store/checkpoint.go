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
// millions of decisions), and under a steady load too (a commit every few
// milliseconds), the background checkpoint hardly ever finds the whole log
// copied before the next commit appends to it, so the log never starts over:
// it grew to 1.3 GB beside a 128 MB database under scripts/ratios.sh, and
// to 19 GB after 1.4 million decisions with scripts/ledgerscale. A log that
// only grows costs every commit: each one appends past the end of the file,
// so its fdatasync also journals the file's new size (p50 1.4 ms, p99
// 5.2 ms under strace at 600 decisions/s, against 0.35 ms to overwrite a
// block already written). So when a checkpoint finds more than
// walBehindFrames frames in the log, the checkpointer marks itself behind,
// and the next writer, right after its commit and before it lets any other
// writer in, runs one PASSIVE checkpoint itself, at the first commit that
// finds no background checkpoint running: it copies only what the background
// checkpoints have not copied yet (the frames of the last moments), so the
// log is whole in the database file and the following commit starts it over
// from its beginning, overwriting the file instead of growing it. That costs
// the writer one short copy and one sync of the database file about once
// per walBehindFrames frames of writing (every second or two under a steady
// load), never at an ordinary pace, and the log's file stays about
// walBehindFrames long.
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
// which the writer catches the checkpoint up itself: 16 MiB, about a second
// of writing at half the writer's maximum rate. The catch-up copies only
// what the last background checkpoint left, so it is short; with a much
// longer bound the background checkpoints fall further behind, and a
// catch-up of hundreds of megabytes stalled the writer (measured at 512 MiB
// with scripts/ratios.sh: the p99 at half the maximum rate went from
// 49-63 ms to 500-650 ms).
var walBehindFrames int64 = 4096

// walCatchUpEvery spaces the writer's catch-ups: a reader that keeps an old
// snapshot open stops the log from starting over, and the log then stays
// long however often the writer copies it.
var walCatchUpEvery = time.Second

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
	// At most once per walCatchUpEvery (see there).
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
