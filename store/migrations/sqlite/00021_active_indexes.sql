-- +goose Up
-- The active policy version's and the active webhooks' indexes as their
-- queries can use them. Their condition was "active = 1" while every query
-- asks "AND active", and SQLite uses a partial index only when the query's
-- WHERE names its condition as written (see 00020). Without it, the
-- writer's read of the active policy version, on every batch of decisions,
-- walked every version of the organisation (each row with its YAML source),
-- and the webhook dispatcher's list of organisations walked every endpoint.
-- PostgreSQL's indexes say "WHERE active" since 00001 and 00002.
DROP INDEX policy_versions_active;
CREATE UNIQUE INDEX policy_versions_active ON policy_versions (org_id) WHERE active;
DROP INDEX webhooks_active;
CREATE INDEX webhooks_active ON webhooks (org_id) WHERE active;

-- +goose Down
DROP INDEX policy_versions_active;
CREATE UNIQUE INDEX policy_versions_active ON policy_versions (org_id) WHERE active = 1;
DROP INDEX webhooks_active;
CREATE INDEX webhooks_active ON webhooks (org_id) WHERE active = 1;
