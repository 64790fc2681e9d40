-- +goose Up
-- Nothing on PostgreSQL: 00021 gives SQLite's policy_versions_active and
-- webhooks_active indexes the condition their queries ask ("WHERE active"),
-- which this engine's indexes have had since 00001 and 00002. The version
-- keeps both engines' schemas numbered alike.
SELECT 1;

-- +goose Down
SELECT 1;
