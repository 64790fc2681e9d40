-- +goose Up
-- Fewer B-trees per decision on the single writer. A rowid table with a
-- TEXT primary key keeps two B-trees, the table by rowid and the key's
-- index; a WITHOUT ROWID table is stored in its key's order, one B-tree.
-- The decision path's tables become WITHOUT ROWID (the same columns, keys
-- and indexes): three B-tree inserts fewer per allowed decision (the
-- decision, its act, its ledger entries). Nothing reads rowids.
--
-- Each table is rebuilt: created anew, filled, the old one dropped, the
-- new one renamed. Reactions point at acts with a foreign key, and
-- dropping acts under them would count every reaction as a violation at
-- COMMIT (SQLite does not recount after the rename), so reactions are set
-- aside and rebuilt after acts. Row contents are unchanged: the audit
-- trail's commitments still hold.

CREATE TABLE decisions_new (
    org_id            TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id                TEXT    NOT NULL,
    member_id         TEXT    NOT NULL,
    customer_id       TEXT    NOT NULL DEFAULT '',
    action            TEXT    NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT    NOT NULL,
    reason            TEXT    NOT NULL DEFAULT '',
    context           TEXT,                          -- JSON, as given
    outcome           TEXT    NOT NULL,
    policy_version    INTEGER NOT NULL,
    rule              TEXT    NOT NULL DEFAULT '',
    explanation_code  TEXT    NOT NULL DEFAULT '',
    explanation_args  TEXT,                          -- JSON object
    flagged           INTEGER NOT NULL DEFAULT 0,
    budgets           TEXT    NOT NULL DEFAULT '[]', -- JSON []BudgetView
    act_id            TEXT    NOT NULL DEFAULT '',
    approval_id       TEXT    NOT NULL DEFAULT '',
    refusal_id        TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    after_the_fact    INTEGER NOT NULL DEFAULT 0,
    team              TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, id)
) WITHOUT ROWID;
INSERT INTO decisions_new (org_id, id, member_id, customer_id, action, amount, currency, reason, context, outcome,
    policy_version, rule, explanation_code, explanation_args, flagged, budgets, act_id, approval_id, refusal_id,
    created_at, after_the_fact, team)
SELECT org_id, id, member_id, customer_id, action, amount, currency, reason, context, outcome,
    policy_version, rule, explanation_code, explanation_args, flagged, budgets, act_id, approval_id, refusal_id,
    created_at, after_the_fact, team
FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_new RENAME TO decisions;
CREATE INDEX decisions_member   ON decisions (org_id, member_id, id);
CREATE INDEX decisions_customer ON decisions (org_id, customer_id, id);
CREATE INDEX decisions_created  ON decisions (org_id, created_at);

CREATE TABLE reactions_old AS SELECT * FROM reactions;
DROP TABLE reactions;

CREATE TABLE acts_new (
    org_id          TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id              TEXT    NOT NULL,
    decision_id     TEXT    NOT NULL DEFAULT '',
    member_id       TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL DEFAULT '',
    action          TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    reason          TEXT    NOT NULL DEFAULT '',
    flagged         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    after_the_fact  INTEGER NOT NULL DEFAULT 0,
    team            TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, id)
) WITHOUT ROWID;
INSERT INTO acts_new (org_id, id, decision_id, member_id, customer_id, action, amount, currency, reason, flagged,
    created_at, after_the_fact, team)
SELECT org_id, id, decision_id, member_id, customer_id, action, amount, currency, reason, flagged,
    created_at, after_the_fact, team
FROM acts;
DROP TABLE acts;
ALTER TABLE acts_new RENAME TO acts;
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
    score       INTEGER CHECK (score BETWEEN 0 AND 10),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, act_id) REFERENCES acts (org_id, id) DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO reactions (org_id, id, act_id, source, sentiment, note, member_id, created_at, score)
SELECT org_id, id, act_id, source, sentiment, note, member_id, created_at, score FROM reactions_old;
DROP TABLE reactions_old;
CREATE INDEX reactions_act ON reactions (org_id, act_id);
-- One employee reaction per act.
CREATE UNIQUE INDEX reactions_employee ON reactions (org_id, act_id) WHERE source = 'employee';
CREATE INDEX reactions_created ON reactions (org_id, created_at);

CREATE TABLE ledger_entries_new (
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
) WITHOUT ROWID;
INSERT INTO ledger_entries_new (org_id, id, budget_id, subject, period, decision_id, kind, amount, created_at)
SELECT org_id, id, budget_id, subject, period, decision_id, kind, amount, created_at FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_new RENAME TO ledger_entries;
CREATE INDEX ledger_entries_decision ON ledger_entries (org_id, decision_id);

-- +goose Down
CREATE TABLE decisions_old (
    org_id            TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id                TEXT    NOT NULL,
    member_id         TEXT    NOT NULL,
    customer_id       TEXT    NOT NULL DEFAULT '',
    action            TEXT    NOT NULL,
    amount            INTEGER NOT NULL,
    currency          TEXT    NOT NULL,
    reason            TEXT    NOT NULL DEFAULT '',
    context           TEXT,
    outcome           TEXT    NOT NULL,
    policy_version    INTEGER NOT NULL,
    rule              TEXT    NOT NULL DEFAULT '',
    explanation_code  TEXT    NOT NULL DEFAULT '',
    explanation_args  TEXT,
    flagged           INTEGER NOT NULL DEFAULT 0,
    budgets           TEXT    NOT NULL DEFAULT '[]',
    act_id            TEXT    NOT NULL DEFAULT '',
    approval_id       TEXT    NOT NULL DEFAULT '',
    refusal_id        TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    after_the_fact    INTEGER NOT NULL DEFAULT 0,
    team              TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, id)
);
INSERT INTO decisions_old SELECT * FROM decisions;
DROP TABLE decisions;
ALTER TABLE decisions_old RENAME TO decisions;
CREATE INDEX decisions_member   ON decisions (org_id, member_id, id);
CREATE INDEX decisions_customer ON decisions (org_id, customer_id, id);
CREATE INDEX decisions_created  ON decisions (org_id, created_at);

CREATE TABLE reactions_old AS SELECT * FROM reactions;
DROP TABLE reactions;
CREATE TABLE acts_old (
    org_id          TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id              TEXT    NOT NULL,
    decision_id     TEXT    NOT NULL DEFAULT '',
    member_id       TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL DEFAULT '',
    action          TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    currency        TEXT    NOT NULL,
    reason          TEXT    NOT NULL DEFAULT '',
    flagged         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    after_the_fact  INTEGER NOT NULL DEFAULT 0,
    team            TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, id)
);
INSERT INTO acts_old SELECT * FROM acts;
DROP TABLE acts;
ALTER TABLE acts_old RENAME TO acts;
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
    score       INTEGER CHECK (score BETWEEN 0 AND 10),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, act_id) REFERENCES acts (org_id, id) DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO reactions SELECT * FROM reactions_old;
DROP TABLE reactions_old;
CREATE INDEX reactions_act ON reactions (org_id, act_id);
CREATE UNIQUE INDEX reactions_employee ON reactions (org_id, act_id) WHERE source = 'employee';
CREATE INDEX reactions_created ON reactions (org_id, created_at);

CREATE TABLE ledger_entries_old (
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
INSERT INTO ledger_entries_old SELECT * FROM ledger_entries;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_old RENAME TO ledger_entries;
CREATE INDEX ledger_entries_decision ON ledger_entries (org_id, decision_id);
