-- +goose Up
-- The closed loop finished: a follow-up case escalates along the policy's
-- approval chain like a request (supervisor, the next role the route names,
-- ..., owners), one step per SLA timeout. Each step is a sealed row, unique
-- per case and level, so two sweepers never apply one step twice. An
-- organisation may set its own thresholds and SLA (NULL: the server's
-- flags). New tables: the rows sealed before stay as they were.
CREATE TABLE case_steps (
    org_id    TEXT    NOT NULL REFERENCES orgs (id),
    id        TEXT    NOT NULL,
    case_id   TEXT    NOT NULL,
    level     INTEGER NOT NULL,
    from_role TEXT    NOT NULL,
    to_role   TEXT    NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    due_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX case_steps_level ON case_steps (org_id, case_id, level);
CREATE TABLE case_settings (
    org_id     TEXT    NOT NULL PRIMARY KEY REFERENCES orgs (id),
    csat_max   INTEGER,
    nps_max    INTEGER,
    sla_s      BIGINT,
    updated_at TIMESTAMPTZ NOT NULL
);
-- A case is due until it reaches the owners (escalated_at now marks the
-- last step, not the only one).
DROP INDEX survey_cases_due;
CREATE INDEX survey_cases_due ON survey_cases (due_at) WHERE status = 'open' AND role <> 'owner';

-- +goose Down
DROP INDEX survey_cases_due;
CREATE INDEX survey_cases_due ON survey_cases (due_at) WHERE status = 'open' AND escalated_at IS NULL;
DROP TABLE case_settings;
DROP TABLE case_steps;
