-- +goose Up
-- The customer's voice (surveys): the organisation's scale, one-answer
-- survey links (only the SHA-256 of their token), standing QR codes
-- (survey points, whose printed token is kept to print the sheet again),
-- the customers' answers, and the answers a limit refused, counted per
-- point, reason and hour. Settings, links, points and answers are sealed
-- in the audit trail; the refused counts are counters, like balances.
CREATE TABLE survey_settings (
    org_id      TEXT    NOT NULL PRIMARY KEY REFERENCES orgs (id),
    scale       TEXT    NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE survey_points (
    org_id      TEXT    NOT NULL REFERENCES orgs (id),
    id          TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    team        TEXT    NOT NULL DEFAULT '',
    token       TEXT    NOT NULL,
    token_hash  BYTEA   NOT NULL UNIQUE,
    ask_server  BOOLEAN NOT NULL DEFAULT FALSE,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_by  TEXT    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE TABLE survey_links (
    org_id      TEXT    NOT NULL REFERENCES orgs (id),
    id          TEXT    NOT NULL,
    token_hash  BYTEA   NOT NULL UNIQUE,
    act_id      TEXT    NOT NULL DEFAULT '',
    member_id   TEXT    NOT NULL,
    customer_id TEXT    NOT NULL DEFAULT '',
    team        TEXT    NOT NULL DEFAULT '',
    created_by  TEXT    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX survey_links_act ON survey_links (org_id, act_id) WHERE act_id <> '';
CREATE TABLE survey_answers (
    org_id      TEXT    NOT NULL REFERENCES orgs (id),
    id          TEXT    NOT NULL,
    link_id     TEXT    NOT NULL DEFAULT '',
    point_id    TEXT    NOT NULL DEFAULT '',
    act_id      TEXT    NOT NULL DEFAULT '',
    member_id   TEXT    NOT NULL DEFAULT '',
    customer_id TEXT    NOT NULL DEFAULT '',
    team        TEXT    NOT NULL DEFAULT '',
    scale       TEXT    NOT NULL,
    score       INTEGER NOT NULL,
    comment     TEXT    NOT NULL DEFAULT '',
    language    TEXT    NOT NULL DEFAULT '',
    low         BOOLEAN NOT NULL DEFAULT FALSE,
    device      TEXT    NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- One answer per link, whatever races.
CREATE UNIQUE INDEX survey_answers_link ON survey_answers (org_id, link_id) WHERE link_id <> '';
CREATE INDEX survey_answers_act ON survey_answers (org_id, act_id) WHERE act_id <> '';
CREATE INDEX survey_answers_member ON survey_answers (org_id, member_id, id);
CREATE INDEX survey_answers_point ON survey_answers (org_id, point_id, created_at) WHERE point_id <> '';
CREATE TABLE survey_refused (
    org_id      TEXT    NOT NULL REFERENCES orgs (id),
    point_id    TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL,
    hour        TIMESTAMPTZ NOT NULL,
    n           BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, point_id, reason, hour)
);

-- +goose Down
DROP TABLE survey_refused;
DROP TABLE survey_answers;
DROP TABLE survey_links;
DROP TABLE survey_points;
DROP TABLE survey_settings;
