-- +goose Up
-- One-time invitations: an owner or manager invites a member; only the
-- SHA-256 of the link's token is stored. A link is used once (used_at) and
-- expires (expires_at). Not sealed: the audit trail records each
-- invitation's creation and acceptance.
CREATE TABLE invitations (
    org_id      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    token_hash  BYTEA    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    access      TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    team        TEXT    NOT NULL DEFAULT '',
    created_by  TEXT    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    member_id   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, id)
);

-- +goose Down
DROP TABLE invitations;
