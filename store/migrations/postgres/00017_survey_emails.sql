-- +goose Up
-- Survey links sent by email: one row per send, written with its link and
-- its job (survey.email) in one transaction. Delivery machinery, not a
-- sealed fact: the job's handler records each attempt here. The token is
-- kept only until the mail is sent or given up (then emptied), so the
-- table never holds a usable link longer than needed.
CREATE TABLE survey_emails (
    org_id     TEXT    NOT NULL REFERENCES orgs (id),
    id         TEXT    NOT NULL,
    link_id    TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    language   TEXT    NOT NULL,
    token      TEXT    NOT NULL DEFAULT '',
    status     TEXT    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT    NOT NULL DEFAULT '',
    created_by TEXT    NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    sent_at    TIMESTAMPTZ,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX survey_emails_recent ON survey_emails (org_id, created_at);

-- +goose Down
DROP TABLE survey_emails;
