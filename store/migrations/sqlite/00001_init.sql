-- margen schema, SQLite engine.
--
-- Times are INTEGER unix microseconds (UTC): compact, fast to compare, and
-- exact to the microsecond both ways. Booleans are INTEGER 0/1. JSON is TEXT,
-- stored byte for byte (the audit chain hashes it).
--
-- Tenant tables are keyed (org_id, id): the same index scopes every lookup to
-- one organisation and serves newest-first cursor pagination (ids are
-- time-ordered).
--
-- Foreign keys are DEFERRABLE INITIALLY DEFERRED: still enforced, but at
-- COMMIT (a violation fails the commit and the transaction is rolled back).
-- An immediate foreign key makes every multi-row INSERT "may abort", and
-- SQLite then copies each page it touches into a statement journal in case
-- the statement has to be undone alone; the decision batch writes with
-- INSERT OR ROLLBACK and needs no statement journal (see store/sql.go).

-- +goose Up
CREATE TABLE orgs (
    id          TEXT    PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    timezone    TEXT    NOT NULL,
    language    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    audit_seq   INTEGER NOT NULL DEFAULT 0,  -- seq of the last audit entry
    audit_head  TEXT    NOT NULL DEFAULT ''  -- hash of the last audit entry
);

CREATE TABLE teams (
    org_id      TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id          TEXT    NOT NULL,
    slug        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, slug)
);

CREATE TABLE members (
    org_id         TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id             TEXT    NOT NULL,
    login          TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    access         TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    team           TEXT    NOT NULL DEFAULT '',
    language       TEXT    NOT NULL DEFAULT '',
    active         INTEGER NOT NULL DEFAULT 1,
    password_hash  TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, login)
);

CREATE TABLE tokens (
    id          TEXT    PRIMARY KEY,
    org_id      TEXT    NOT NULL,
    member_id   TEXT    NOT NULL,
    hash        BLOB    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    FOREIGN KEY (org_id, member_id) REFERENCES members (org_id, id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX tokens_member ON tokens (org_id, member_id);

CREATE TABLE customers (
    org_id      TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id          TEXT    NOT NULL,
    ref         TEXT    NOT NULL,
    name        TEXT    NOT NULL DEFAULT '',
    contact     TEXT    NOT NULL DEFAULT '',
    tags        TEXT    NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, ref)
);

CREATE TABLE policy_versions (
    org_id      TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    version     INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0,
    created_by  TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, version)
);
-- At most one active version per organisation.
CREATE UNIQUE INDEX policy_versions_active ON policy_versions (org_id) WHERE active = 1;

CREATE TABLE decisions (
    org_id            TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id                TEXT    NOT NULL,
    member_id         TEXT    NOT NULL,
    customer_id       TEXT    NOT NULL DEFAULT '',
    action            TEXT    NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT    NOT NULL,
    reason            TEXT    NOT NULL DEFAULT '',
    context           TEXT,                       -- JSON, as given
    outcome           TEXT    NOT NULL,
    policy_version    INTEGER NOT NULL,
    rule              TEXT    NOT NULL DEFAULT '',
    explanation_code  TEXT    NOT NULL DEFAULT '',
    explanation_args  TEXT,                       -- JSON object
    flagged           INTEGER NOT NULL DEFAULT 0,
    budgets           TEXT    NOT NULL DEFAULT '[]', -- JSON []BudgetView
    act_id            TEXT    NOT NULL DEFAULT '',
    approval_id       TEXT    NOT NULL DEFAULT '',
    refusal_id        TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX decisions_member   ON decisions (org_id, member_id, id);
CREATE INDEX decisions_customer ON decisions (org_id, customer_id, id);
CREATE INDEX decisions_created  ON decisions (org_id, created_at);

CREATE TABLE acts (
    org_id       TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id           TEXT    NOT NULL,
    decision_id  TEXT    NOT NULL DEFAULT '',
    member_id    TEXT    NOT NULL,
    customer_id  TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL,
    amount       INTEGER NOT NULL,
    currency     TEXT    NOT NULL,
    reason       TEXT    NOT NULL DEFAULT '',
    flagged      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- Acts are listed by member or customer through the decisions that made them
-- (see ListActs): no random-key index of their own on the write path.
CREATE INDEX acts_created  ON acts (org_id, created_at);
CREATE INDEX acts_flagged  ON acts (org_id, id) WHERE flagged = 1;

CREATE TABLE reactions (
    org_id      TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id          TEXT    NOT NULL,
    act_id      TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    sentiment   TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    member_id   TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, act_id) REFERENCES acts (org_id, id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX reactions_act ON reactions (org_id, act_id);
-- One employee reaction per act.
CREATE UNIQUE INDEX reactions_employee ON reactions (org_id, act_id) WHERE source = 'employee';

CREATE TABLE refusals (
    org_id         TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id             TEXT    NOT NULL,
    decision_id    TEXT    NOT NULL DEFAULT '',
    member_id      TEXT    NOT NULL,
    customer_id    TEXT    NOT NULL DEFAULT '',
    action         TEXT    NOT NULL DEFAULT '',
    amount         INTEGER NOT NULL DEFAULT 0,
    wanted         TEXT    NOT NULL DEFAULT '',
    reason_kind    TEXT    NOT NULL,
    rule           TEXT    NOT NULL DEFAULT '',
    customer_left  TEXT    NOT NULL DEFAULT '',
    note           TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX refusals_member  ON refusals (org_id, member_id, id);
CREATE INDEX refusals_rule    ON refusals (org_id, rule, id);
CREATE INDEX refusals_created ON refusals (org_id, created_at);

CREATE TABLE approvals (
    org_id         TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id             TEXT    NOT NULL,
    decision_id    TEXT    NOT NULL,
    member_id      TEXT    NOT NULL,
    customer_id    TEXT    NOT NULL DEFAULT '',
    action         TEXT    NOT NULL,
    amount         INTEGER NOT NULL,
    approver_role  TEXT    NOT NULL DEFAULT '',
    sla_us         INTEGER NOT NULL DEFAULT 0,   -- SLA in microseconds
    due_at         INTEGER NOT NULL,
    on_timeout     TEXT    NOT NULL DEFAULT '',
    escalate_to    TEXT    NOT NULL DEFAULT '',
    status         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX approvals_status   ON approvals (org_id, status, due_at);
CREATE INDEX approvals_decision ON approvals (org_id, decision_id);
-- The SLA worker scans open requests of every organisation by due time.
CREATE INDEX approvals_due ON approvals (due_at) WHERE status = 'pending';

-- A budget account: one policy budget, for one subject, in one period.
CREATE TABLE budget_accounts (
    org_id        TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    budget_id     TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    period        TEXT    NOT NULL,
    scope         TEXT    NOT NULL DEFAULT '',
    period_kind   TEXT    NOT NULL DEFAULT '',
    limit_amount  INTEGER NOT NULL DEFAULT 0,
    posted        INTEGER NOT NULL DEFAULT 0,
    pending       INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (org_id, budget_id, subject, period)
) WITHOUT ROWID;

CREATE TABLE ledger_entries (
    org_id       TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id           TEXT    NOT NULL,
    budget_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    period       TEXT    NOT NULL,
    decision_id  TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('posted', 'pending')),
    amount       INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX ledger_entries_decision ON ledger_entries (org_id, decision_id);

-- Append-only, hash-chained per organisation (see margen.ChainHash).
CREATE TABLE audit_log (
    org_id     TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL DEFAULT '',
    data       TEXT    NOT NULL DEFAULT '',  -- JSON, byte for byte as hashed
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    PRIMARY KEY (org_id, seq)
) WITHOUT ROWID;

CREATE TABLE idempotency (
    org_id        TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    member_id     TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          BLOB,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (org_id, member_id, key)
);

-- +goose Down
DROP TABLE idempotency;
DROP TABLE audit_log;
DROP TABLE ledger_entries;
DROP TABLE budget_accounts;
DROP TABLE approvals;
DROP TABLE refusals;
DROP TABLE reactions;
DROP TABLE acts;
DROP TABLE decisions;
DROP TABLE policy_versions;
DROP TABLE customers;
DROP TABLE tokens;
DROP TABLE members;
DROP TABLE teams;
DROP TABLE orgs;
