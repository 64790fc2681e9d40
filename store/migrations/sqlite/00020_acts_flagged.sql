-- +goose Up
-- The flagged acts' index as ListActs can use it. Its condition was
-- "flagged = 1" while the query asks "WHERE flagged", and SQLite uses a
-- partial index only when the query's WHERE names its condition as
-- written: the inbox's flagged list walked every act of the organisation.
-- PostgreSQL's index says "WHERE flagged" since 00001.
DROP INDEX acts_flagged;
CREATE INDEX acts_flagged ON acts (org_id, id) WHERE flagged;

-- +goose Down
DROP INDEX acts_flagged;
CREATE INDEX acts_flagged ON acts (org_id, id) WHERE flagged = 1;
