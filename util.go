package margen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Clock is the source of time; tests inject a fixed or stepping clock.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the real time, in UTC, truncated to microseconds: the
// precision both engines store, so a time read back equals the time written
// (the audit chain hashes it).
type SystemClock struct{}

// Now returns the current UTC time to the microsecond.
func (SystemClock) Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// NewID returns a new time-ordered identifier with a readable prefix,
// e.g. "dec_0193a1b2c3d4...". Ids sort by creation time within a process,
// which cursor pagination relies on.
func NewID(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	var b [32]byte
	hex.Encode(b[:], u[:])
	return prefix + "_" + string(b[:])
}

// CustomerID derives a customer's id from its organisation and reference, so
// two processes that see a new customer at once agree on its id.
func CustomerID(orgID, ref string) string {
	h := sha256.New()
	h.Write([]byte(orgID))
	h.Write([]byte{0})
	h.Write([]byte(ref))
	return "cus_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// ChainHash computes the hash of an audit entry chained to the previous one.
// Fields are length-prefixed so no two entries can encode alike.
func ChainHash(e *AuditEntry) string {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put(e.PrevHash)
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	put(e.At.UTC().Format(time.RFC3339Nano))
	put(e.Actor)
	put(string(e.Action))
	put(e.Subject)
	put(string(e.Data))
	return hex.EncodeToString(h.Sum(nil))
}

var locations sync.Map // time zone name -> *time.Location

// Location is the organisation's time zone, loaded once per name. Budget
// periods and conditions on the hour follow it. A zone the system does not
// know (organisations are created with a valid one) falls back to UTC.
func (o *Org) Location() *time.Location {
	if l, ok := locations.Load(o.Timezone); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(o.Timezone)
	if err != nil {
		l = time.UTC
	}
	locations.Store(o.Timezone, l)
	return l
}
