-- +goose Up
-- Import files uploaded from the manager's desk: checked (a dry run) and
-- imported by jobs of the queue. The file is dropped once imported.
-- Delivery machinery, not facts: the records an import writes are sealed
-- in the audit trail, the upload is not.
CREATE TABLE uploads (
    id          TEXT    PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id),
    member_id   TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('customers', 'members', 'teams')),
    file_name   TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('checking', 'checked', 'importing', 'done', 'failed')),
    skip_bad    INTEGER NOT NULL DEFAULT 0,
    report      TEXT    NOT NULL DEFAULT '',
    problem     TEXT    NOT NULL DEFAULT '',
    done        INTEGER NOT NULL DEFAULT 0,
    total       INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX uploads_org ON uploads (org_id, created_at);
-- The purge: unconfirmed uploads to expire, old ones to delete.
CREATE INDEX uploads_updated ON uploads (updated_at);
-- The desk's last backups: the latest jobs of a kind.
CREATE INDEX jobs_kind_run_at ON jobs (kind, run_at);

-- +goose Down
DROP INDEX jobs_kind_run_at;
DROP INDEX uploads_updated;
DROP TABLE uploads;
