-- +goose Up
-- margen schema, SQLite engine: one durable job queue for all background
-- work (webhook deliveries first), and idempotency records that expire.
-- Times are INTEGER unix microseconds, as everywhere.

CREATE TABLE jobs (
    id            TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    org_id        TEXT    NOT NULL DEFAULT '',        -- '' for work of the whole installation
    payload       TEXT    NOT NULL,                   -- JSON, opaque to the queue
    unique_key    TEXT,                               -- NULL: no dedupe
    status        TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 0,         -- 0: the runner's default for the kind
    run_at        INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   INTEGER,
    last_error    TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
-- The runners' queue: due pending jobs of every kind.
CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'pending';
-- At most one job per kind and unique key (NULL keys never collide).
CREATE UNIQUE INDEX jobs_unique ON jobs (kind, unique_key);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status IN ('done', 'cancelled');

-- Webhook deliveries are sent by jobs now: the pending ones move to the
-- queue with their attempt count, due time and lease.
INSERT INTO jobs (id, kind, org_id, payload, unique_key, status, attempts, max_attempts, run_at, lease_until, created_at)
SELECT 'job_' || id, 'webhook.delivery', org_id, '{"delivery":"' || id || '"}', id, 'pending', attempts, 0,
       next_at, lease_until, created_at
FROM deliveries WHERE status = 'pending';
DROP INDEX deliveries_due;
ALTER TABLE deliveries DROP COLUMN lease_until;

-- Idempotency records hold the HTTP layer's answer, opaque to the store,
-- and expire.
ALTER TABLE idempotency ADD COLUMN response BLOB NOT NULL DEFAULT x'';
ALTER TABLE idempotency ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
UPDATE idempotency SET
    response = CAST('{"status":' || status || ',"body":' || COALESCE(NULLIF(CAST(body AS TEXT), ''), 'null') || '}' AS BLOB),
    expires_at = created_at + 86400000000;
ALTER TABLE idempotency DROP COLUMN status;
ALTER TABLE idempotency DROP COLUMN body;
CREATE INDEX idempotency_expiry ON idempotency (expires_at);

-- +goose Down
DROP INDEX idempotency_expiry;
ALTER TABLE idempotency ADD COLUMN status INTEGER NOT NULL DEFAULT 200;
ALTER TABLE idempotency ADD COLUMN body BLOB;
ALTER TABLE idempotency DROP COLUMN response;
ALTER TABLE idempotency DROP COLUMN expires_at;
ALTER TABLE deliveries ADD COLUMN lease_until INTEGER;
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE status = 'pending';
DROP TABLE jobs;
