-- margen schema, SQLite engine: a sealed audit trail.
--
-- From audit_sealed_from on (0: not sealed yet), each audit entry commits to
-- the full content of the rows its transaction wrote (row_digests) and is
-- chained with HMAC-SHA256 under the audit key, whose id the organisation
-- records (audit_key_id). Existing chains keep their SHA-256 links; the
-- first write under a key seals them with an entry that commits to every
-- row already stored (see store/seal.go).

-- +goose Up
ALTER TABLE orgs ADD COLUMN audit_sealed_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN audit_key_id      TEXT    NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN row_digests  TEXT    NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_log DROP COLUMN row_digests;
ALTER TABLE orgs DROP COLUMN audit_key_id;
ALTER TABLE orgs DROP COLUMN audit_sealed_from;
