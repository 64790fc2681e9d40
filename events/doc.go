// Package events is the broker behind the live stream (GET /api/v1/events):
// it turns an organisation's committed audit entries into events
// (margen.EventsOf: one typed payload per event type) and fans them out to
// the subscribers of that organisation. An entry whose data does not
// decode is logged with its seq and skipped: the streams go on.
//
// Events are derived from the audit trail, never announced by the code
// that makes a change: an entry exists only once its transaction
// committed, so nothing is announced for a rolled-back change. The broker
// polls the shared database (Store.ListAudit after the last sequence number
// it saw), which makes it work across several processes on one PostgreSQL
// database; Notify wakes the poller at once after a local commit so the
// process that made a change announces it without waiting for the next
// tick. Per-organisation audit sequence numbers are assigned under the
// organisation row lock, so a committed entry is never skipped by a cursor.
//
// The broker must never write: it only reads the audit trail.
package events
