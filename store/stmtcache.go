package store

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements on the single SQLite write
// connection. The hot path runs the same few statements thousands of times
// a second, and compiling a multi-row INSERT costs about as much as running
// it. A statement can only be prepared while the connection is free, and
// inside a transaction it is not: so a miss runs unprepared and is queued,
// and the queue is prepared right after the transaction ends.
type stmtCache struct {
	db   *sql.DB
	mu   sync.Mutex
	m    map[string]*sql.Stmt
	want map[string]bool
}

// stmtCacheMax bounds the cache. Multi-row INSERTs come in power-of-two row
// counts on SQLite (see insertMany), so the set of texts is small anyway.
const stmtCacheMax = 512

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, want: map[string]bool{}}
}

// get returns the prepared statement for query, or nil (and remembers to
// prepare it after the transaction).
func (c *stmtCache) get(query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[query]; st != nil {
		return st
	}
	if len(c.m)+len(c.want) < stmtCacheMax {
		c.want[query] = true
	}
	return nil
}

// prepareWanted prepares the statements missed by the last transaction. It
// must be called with no transaction open on this goroutine.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.want) == 0 {
		c.mu.Unlock()
		return
	}
	want := c.want
	c.want = map[string]bool{}
	c.mu.Unlock()
	for q := range want {
		st, err := c.db.PrepareContext(context.WithoutCancel(ctx), q)
		if err != nil {
			continue // it runs unprepared; the error, if real, shows there
		}
		c.mu.Lock()
		if c.m == nil || c.m[q] != nil {
			st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
	return nil
}
