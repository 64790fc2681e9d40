-- +goose Up
-- Nothing on PostgreSQL: 00020 rebuilds SQLite's decision-path tables as
-- WITHOUT ROWID tables (heap tables have no counterpart). The version keeps
-- both engines' schemas numbered alike.
SELECT 1;

-- +goose Down
SELECT 1;
