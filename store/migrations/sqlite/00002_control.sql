-- margen schema, SQLite engine: approvals with SLA and escalation, their
-- history, webhook endpoints and their deliveries.
--
-- Approvals written by the decision engine before this migration (and by
-- DecideBatch, which still names only the 00001 columns) take the defaults:
-- kind 'amount', level 0, not decided.

-- +goose Up
ALTER TABLE approvals ADD COLUMN kind        TEXT    NOT NULL DEFAULT 'amount';
ALTER TABLE approvals ADD COLUMN description TEXT    NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN level       INTEGER NOT NULL DEFAULT 0;  -- +1 per escalation
ALTER TABLE approvals ADD COLUMN decided_by  TEXT    NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN decided_at  INTEGER;
ALTER TABLE approvals ADD COLUMN comment     TEXT    NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN act_id      TEXT    NOT NULL DEFAULT '';

-- "My pending approvals": open requests routed to a role, newest first.
CREATE INDEX approvals_pending_role ON approvals (org_id, approver_role, id) WHERE status = 'pending';
-- "Requests I made" and filtered lists, newest first.
CREATE INDEX approvals_member     ON approvals (org_id, member_id, id);
CREATE INDEX approvals_status_id  ON approvals (org_id, status, id);
-- (The SLA worker's due scan uses approvals_due from 00001.)

-- The history of a request: requested, escalated, approved, rejected, expired.
CREATE TABLE approval_events (
    org_id       TEXT    NOT NULL REFERENCES orgs (id),
    id           TEXT    NOT NULL,
    approval_id  TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    from_role    TEXT    NOT NULL DEFAULT '',
    to_role      TEXT    NOT NULL DEFAULT '',
    comment      TEXT    NOT NULL DEFAULT '',
    at           INTEGER NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, approval_id) REFERENCES approvals (org_id, id)
);
CREATE INDEX approval_events_approval ON approval_events (org_id, approval_id, at);

CREATE TABLE webhooks (
    org_id      TEXT    NOT NULL REFERENCES orgs (id),
    id          TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    events      TEXT    NOT NULL DEFAULT '[]',  -- JSON array of event types, "*" for all
    secret      TEXT    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    after_seq   INTEGER NOT NULL DEFAULT 0,     -- audit seq at creation: no history is sent
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX webhooks_active ON webhooks (org_id) WHERE active = 1;

-- How far DispatchWebhooks has read each organisation's audit trail.
CREATE TABLE webhook_cursors (
    org_id    TEXT    PRIMARY KEY REFERENCES orgs (id),
    last_seq  INTEGER NOT NULL
);

CREATE TABLE deliveries (
    org_id        TEXT    NOT NULL REFERENCES orgs (id),
    id            TEXT    NOT NULL,               -- the webhook-id header
    webhook_id    TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    audit_seq     INTEGER NOT NULL,
    payload       TEXT    NOT NULL,               -- JSON, byte for byte as signed
    status        TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    lease_until   INTEGER,
    last_status   INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    delivered_at  INTEGER,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, webhook_id) REFERENCES webhooks (org_id, id),
    -- One delivery per endpoint and event, ever.
    UNIQUE (org_id, webhook_id, audit_seq, event_type)
);
-- The delivery worker's queue: due pending deliveries of every organisation.
CREATE INDEX deliveries_due     ON deliveries (next_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook ON deliveries (org_id, webhook_id, id);
CREATE INDEX deliveries_status  ON deliveries (org_id, status, id);

CREATE TABLE delivery_attempts (
    org_id       TEXT    NOT NULL REFERENCES orgs (id),
    delivery_id  TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    status_code  INTEGER NOT NULL DEFAULT 0,
    error        TEXT    NOT NULL DEFAULT '',
    response     TEXT    NOT NULL DEFAULT '',
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (org_id, delivery_id) REFERENCES deliveries (org_id, id)
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (org_id, delivery_id, at);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
DROP TABLE webhook_cursors;
DROP TABLE webhooks;
DROP TABLE approval_events;
DROP INDEX approvals_status_id;
DROP INDEX approvals_member;
DROP INDEX approvals_pending_role;
ALTER TABLE approvals DROP COLUMN act_id;
ALTER TABLE approvals DROP COLUMN comment;
ALTER TABLE approvals DROP COLUMN decided_at;
ALTER TABLE approvals DROP COLUMN decided_by;
ALTER TABLE approvals DROP COLUMN level;
ALTER TABLE approvals DROP COLUMN description;
ALTER TABLE approvals DROP COLUMN kind;
