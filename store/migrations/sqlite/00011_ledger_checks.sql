-- +goose Up
-- The latest reports of `ledger check`, run as a job of the queue (kind
-- ledger.check) and served by GET /api/v1/ledger/check. The report is the
-- JSON of margen.LedgerCheck, opaque to the store; the store keeps the
-- newest few per organisation. Times are INTEGER unix microseconds.
CREATE TABLE ledger_checks (
    org_id       TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id           TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    ok           INTEGER NOT NULL,
    report       TEXT    NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX ledger_checks_latest ON ledger_checks (org_id, finished_at);

-- +goose Down
DROP TABLE ledger_checks;
