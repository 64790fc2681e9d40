//go:build cgosqlite

package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// sqliteDriver is the database/sql driver of SQLite when margen is built
// with -tags cgosqlite: the C SQLite of github.com/mattn/go-sqlite3 (needs
// cgo and a C compiler), behind the same DSN syntax as the default
// modernc.org/sqlite driver (_pragma=name(value) and _txlock).
const sqliteDriver = "margen-sqlite3"

func init() {
	sql.Register(sqliteDriver, pragmaDriver{})
}

// pragmaDriver opens mattn connections from a modernc-style DSN: the
// _pragma parameters run as PRAGMA statements on every new connection,
// _txlock is passed on.
type pragmaDriver struct{}

func (pragmaDriver) Open(dsn string) (driver.Conn, error) {
	path, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, err
	}
	pragmas := q["_pragma"]
	open := path
	if lock := q.Get("_txlock"); lock != "" {
		open += "?_txlock=" + lock
	}
	c, err := (&sqlite3.SQLiteDriver{}).Open(open)
	if err != nil {
		return nil, err
	}
	conn := &pragmaConn{SQLiteConn: c.(*sqlite3.SQLiteConn)}
	// busy_timeout first, so the others wait for a lock if they must.
	for _, first := range []bool{true, false} {
		for _, p := range pragmas {
			if strings.HasPrefix(p, "busy_timeout") != first {
				continue
			}
			name, val, _ := strings.Cut(strings.TrimSuffix(p, ")"), "(")
			if name == "busy_timeout" && q.Get("_txlock") == "immediate" {
				// The C busy handler sleeps through a context's end
				// (mattn interrupts statements, not that wait), so the
				// write connection waits in short steps and BeginTx
				// repeats them for as long as busy_timeout allows and
				// the context lets it.
				ms, err := strconv.Atoi(val)
				if err != nil {
					conn.Close()
					return nil, fmt.Errorf("store: busy_timeout(%s): %w", val, err)
				}
				conn.busyWait = time.Duration(ms) * time.Millisecond
				val = strconv.Itoa(int(busyStep / time.Millisecond))
			}
			if _, err := conn.ExecContext(context.Background(), "PRAGMA "+name+" = "+val, nil); err != nil {
				conn.Close()
				return nil, err
			}
		}
	}
	return conn, nil
}

// busyStep is how long one BEGIN of the write connection waits for
// another connection's lock before it looks at its context again.
const busyStep = 20 * time.Millisecond

// pragmaConn is a mattn connection whose BeginTx, on the write connection
// (busyWait > 0), waits for a lock held elsewhere at most busyWait and no
// longer than its context.
type pragmaConn struct {
	*sqlite3.SQLiteConn
	busyWait time.Duration
}

func (c *pragmaConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.busyWait <= 0 {
		return c.SQLiteConn.BeginTx(ctx, opts)
	}
	deadline := time.Now().Add(c.busyWait)
	for {
		tx, err := c.SQLiteConn.BeginTx(ctx, opts)
		if code, ok := sqliteCode(err); !ok || code&0xff != sqliteBusy || !time.Now().Before(deadline) {
			return tx, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Millisecond):
		}
	}
}

// sqliteCode returns the extended result code of a SQLite error.
func sqliteCode(err error) (int, bool) {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return int(se.ExtendedCode), true
	}
	return 0, false
}
