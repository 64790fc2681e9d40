-- +goose Up
-- The closed loop: the follow-up case a low survey answer opens, exactly
-- one per answer (unique), routed to the member's supervisor and escalated
-- to the owners once when its due time passes. Cases are sealed rows.
CREATE TABLE survey_cases (
    org_id       TEXT    NOT NULL REFERENCES orgs (id) DEFERRABLE INITIALLY DEFERRED,
    id           TEXT    NOT NULL,
    answer_id    TEXT    NOT NULL,
    act_id       TEXT    NOT NULL DEFAULT '',
    member_id    TEXT    NOT NULL DEFAULT '',
    team         TEXT    NOT NULL DEFAULT '',
    scale        TEXT    NOT NULL,
    score        INTEGER NOT NULL,
    role         TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL,
    due_at       INTEGER NOT NULL,
    escalated_at INTEGER,
    action       TEXT    NOT NULL DEFAULT '',
    outcome      TEXT    NOT NULL DEFAULT '',
    reaction     TEXT    NOT NULL DEFAULT '',
    closed_by    TEXT    NOT NULL DEFAULT '',
    closed_at    INTEGER,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- One case per answer, whatever races.
CREATE UNIQUE INDEX survey_cases_answer ON survey_cases (org_id, answer_id);
CREATE INDEX survey_cases_due ON survey_cases (due_at) WHERE status = 'open' AND escalated_at IS NULL;
CREATE INDEX survey_cases_act ON survey_cases (org_id, act_id) WHERE act_id <> '';
CREATE INDEX survey_cases_status ON survey_cases (org_id, status, id);

-- +goose Down
DROP TABLE survey_cases;
