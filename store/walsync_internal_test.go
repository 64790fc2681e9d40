package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// gatedSync replaces walSync's fdatasync: each sync reports that it began,
// then waits for the test to let it finish with the error it is given.
type gatedSync struct {
	began  chan struct{}
	finish chan error
}

func gate(db *DB) *gatedSync {
	g := &gatedSync{began: make(chan struct{}, 16), finish: make(chan error, 16)}
	db.wal.syncFile = func(f *os.File) error {
		g.began <- struct{}{}
		if err := <-g.finish; err != nil {
			return err
		}
		return fdatasync(f)
	}
	return g
}

func (g *gatedSync) waitBegan(t *testing.T) {
	t.Helper()
	select {
	case <-g.began:
	case <-time.After(10 * time.Second):
		t.Fatal("no sync of the write-ahead log began")
	}
}

func openWALTest(t *testing.T) *DB {
	t.Helper()
	db, err := openSQLite(context.Background(), filepath.Join(t.TempDir(), "wal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.connWait = 10 * time.Second
	if _, err := db.write.Exec("CREATE TABLE t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	return db
}

func insert(db *DB, n int) error {
	return db.writeTx(context.Background(), func(t *wtx) error {
		_, err := t.exec("INSERT INTO t (n) VALUES (?)", n)
		return err
	})
}

func count(t *testing.T, db *DB) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriteReturnsOnceLogSynced: a write returns only after a sync of the
// log that began after its commit; meanwhile the write connection is free
// and the next transaction commits, covered by the next sync.
func TestWriteReturnsOnceLogSynced(t *testing.T) {
	db := openWALTest(t)
	g := gate(db)
	first := make(chan error, 1)
	go func() { first <- insert(db, 1) }()
	g.waitBegan(t) // the first write is committed and syncing

	// The next transaction commits while that sync is still running.
	n, err := db.commitTx(context.Background(), func(t *wtx) error {
		_, err := t.exec("INSERT INTO t (n) VALUES (2)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-first:
		t.Fatalf("the first write returned (%v) before its sync ended", err)
	default:
	}
	second := make(chan error, 1)
	go func() { second <- db.wal.wait(n) }()

	g.finish <- nil // the first sync ends: it covers the first commit only
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	g.waitBegan(t) // the second commit needs a sync of its own
	select {
	case err := <-second:
		t.Fatalf("the second write returned (%v) on a sync that began before its commit", err)
	default:
	}
	g.finish <- nil
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if got := count(t, db); got != 2 {
		t.Fatalf("%d rows, want 2", got)
	}
}

// TestOneSyncAnswersManyWrites: writes that commit while a sync runs share
// the next one.
func TestOneSyncAnswersManyWrites(t *testing.T) {
	db := openWALTest(t)
	g := gate(db)
	done := make(chan error, 20)
	go func() { done <- insert(db, 0) }()
	g.waitBegan(t)
	for i := range 19 {
		go func() { done <- insert(db, i+1) }()
	}
	// All 19 commit (the connection is free) and wait for the next sync.
	deadline := time.Now().Add(10 * time.Second)
	committed := func() uint64 {
		db.wal.mu.Lock()
		defer db.wal.mu.Unlock()
		return db.wal.committed
	}
	for committed() < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	g.finish <- nil
	g.waitBegan(t)
	g.finish <- nil
	for range 20 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-g.began:
		t.Fatal("a third sync ran: 19 writes that waited together should share one")
	default:
	}
}

// TestFailedSyncRefusesWrites: after a sync fails, the writes it covered get
// the error and every later write is refused before it writes anything.
func TestFailedSyncRefusesWrites(t *testing.T) {
	db := openWALTest(t)
	g := gate(db)
	if _, err := db.write.Exec("INSERT INTO t (n) VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- insert(db, 1) }()
	g.waitBegan(t)
	g.finish <- errors.New("EIO")
	if err := <-done; err == nil {
		t.Fatal("a write whose sync failed returned nil")
	}
	before := count(t, db)
	if err := insert(db, 2); err == nil {
		t.Fatal("a write after a failed sync was accepted")
	}
	if got := count(t, db); got != before {
		t.Fatalf("a refused write changed the table: %d rows, then %d", before, got)
	}
}
