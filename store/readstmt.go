package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
)

// SQLite parses a statement's text every time it is run unless it is kept
// prepared, and modernc.org/sqlite keeps nothing: a page's reads spent as
// much CPU parsing their SQL as running it (the inbox: 1.02 s preparing
// against 1.06 s stepping, in one profile of 200 pages). readConnector
// opens the read pool's connections with a small cache of prepared
// statements each, keyed by the query's text, so a query the pages run
// again is parsed once per connection. PostgreSQL needs none: pgx caches
// prepared statements per connection.
//
// A cached statement serves one query at a time: while its rows are open
// (a caller may run a second query on the same connection before closing
// the first's rows), the same text is run unprepared, as before.
type readConnector struct {
	drv driver.Driver
	dsn string
}

// readStmtMax bounds each connection's cache. The texts that vary with their
// arguments (IN lists of n placeholders, filters) are few per page; past the
// bound an entry not in use is dropped for the new one.
const readStmtMax = 128

func (c readConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	for _, ok := range []bool{
		implements[driver.QueryerContext](conn), implements[driver.ExecerContext](conn),
		implements[driver.ConnPrepareContext](conn), implements[driver.ConnBeginTx](conn),
		implements[driver.Pinger](conn), implements[driver.SessionResetter](conn), implements[driver.Validator](conn),
	} {
		if !ok {
			conn.Close()
			return nil, errors.New("store: the SQLite driver's connection lacks an interface the read pool needs")
		}
	}
	return &readConn{Conn: conn, stmts: map[string]*readStmt{}}, nil
}

func (c readConnector) Driver() driver.Driver { return c.drv }

func implements[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

type readStmt struct {
	s    driver.Stmt
	busy bool // its rows are open
}

// readConn is a read connection with its prepared statements. database/sql
// never uses a connection from two goroutines at once, but it may close a
// query's rows from another goroutine (when the query's context ends), so
// the cache has a mutex.
type readConn struct {
	driver.Conn
	mu    sync.Mutex
	stmts map[string]*readStmt
}

func (c *readConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	st, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	rows, err := st.s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		c.give(st)
		return nil, err
	}
	return &readRows{Rows: rows, done: func() { c.give(st) }}, nil
}

// take returns the prepared statement of query, marked busy, preparing it
// if the cache has room; nil when it is busy or cannot be kept.
func (c *readConn) take(ctx context.Context, query string) (*readStmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil {
		if st.busy {
			return nil, nil
		}
		st.busy = true
		return st, nil
	}
	s, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if !implements[driver.StmtQueryContext](s) || len(c.stmts) >= readStmtMax && !c.evictLocked() {
		s.Close()
		return nil, nil
	}
	st := &readStmt{s: s, busy: true}
	c.stmts[query] = st
	return st, nil
}

// evictLocked drops one statement not in use (the map's order picks which).
func (c *readConn) evictLocked() bool {
	for q, st := range c.stmts {
		if !st.busy {
			st.s.Close()
			delete(c.stmts, q)
			return true
		}
	}
	return false
}

func (c *readConn) give(st *readStmt) {
	c.mu.Lock()
	st.busy = false
	c.mu.Unlock()
}

func (c *readConn) Close() error {
	c.mu.Lock()
	for q, st := range c.stmts {
		st.s.Close()
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// The rest of what database/sql asks of a connection, passed through.

func (c *readConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *readConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *readConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *readConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *readConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *readConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// readRows gives the statement back when its rows are closed.
type readRows struct {
	driver.Rows
	once sync.Once
	done func()
}

func (r *readRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.done)
	return err
}
