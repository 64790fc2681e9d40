package store

import (
	"strconv"
	"strings"
	"time"
)

// dialect is the whole seam between the engines for the SQL written once:
// placeholders (? becomes $n on PostgreSQL), row locks (FOR UPDATE only on
// PostgreSQL) and how times travel (timestamptz on PostgreSQL, INTEGER unix
// microseconds on SQLite). Everything else is the same SQL on both.
//
// The one path that differs by engine, the decision batch's multi-row
// inserts and its key-set lookups, is written out per engine, each
// statement a constant that pick chooses: write_sqlite.go (INSERT OR
// ROLLBACK with power-of-two VALUES lists; lookups through json_each) and
// write_postgres.go (INSERT ... SELECT * FROM unnest of one typed array per
// column; lookups through unnest). rows.go holds what both share: each table's column list and the
// helper that turns a row into its values, in that order.
type dialect struct{ pg bool }

// pick is the statement written for this engine.
func (d dialect) pick(sqlite, pg string) string {
	if d.pg {
		return pg
	}
	return sqlite
}

// maxParams is how many bind parameters one statement may carry.
func (d dialect) maxParams() int {
	if d.pg {
		return 65535
	}
	return 32766
}

// rebind turns ? placeholders into $1, $2... on PostgreSQL.
func (d dialect) rebind(q string) string {
	if !d.pg || strings.IndexByte(q, '?') < 0 {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// forUpdate locks the selected rows on PostgreSQL. SQLite needs no row
// locks: a write transaction there (BEGIN IMMEDIATE) owns the whole file.
func (d dialect) forUpdate() string {
	if d.pg {
		return " FOR UPDATE"
	}
	return ""
}

// forNoKeyUpdate locks an organisation row on PostgreSQL without blocking
// the foreign-key checks (FOR KEY SHARE) of inserts that reference it.
func (d dialect) forNoKeyUpdate() string {
	if d.pg {
		return " FOR NO KEY UPDATE"
	}
	return ""
}

// ts is a time as the engine stores it: timestamptz on PostgreSQL, INTEGER
// unix microseconds on SQLite. Both keep exactly microseconds.
func (d dialect) ts(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d.pg {
		return t
	}
	return t.UnixMicro()
}

// tsPtr is ts for a nullable time.
func (d dialect) tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.ts(*t)
}

// placeholders writes "(?, ?, ?)" for one row of cols values, numbered from
// n+1 on PostgreSQL.
func (d dialect) placeholders(b *strings.Builder, cols, n int) {
	b.WriteByte('(')
	for i := 0; i < cols; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		if d.pg {
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n + i + 1))
		} else {
			b.WriteByte('?')
		}
	}
	b.WriteByte(')')
}
