-- +goose Up
-- What insight will need, recorded when it happens.
--
-- The member's team on each decision and act, as it was when they were
-- written: a member who moves to another team later does not take their
-- history along. Rows written before this migration get the member's
-- team as it is now (the best there is).
ALTER TABLE decisions ADD COLUMN team TEXT NOT NULL DEFAULT '';
ALTER TABLE acts ADD COLUMN team TEXT NOT NULL DEFAULT '';
UPDATE decisions SET team = (SELECT m.team FROM members m WHERE m.org_id = decisions.org_id AND m.id = decisions.member_id)
    WHERE EXISTS (SELECT 1 FROM members m WHERE m.org_id = decisions.org_id AND m.id = decisions.member_id AND m.team <> '');
UPDATE acts SET team = (SELECT m.team FROM members m WHERE m.org_id = acts.org_id AND m.id = acts.member_id)
    WHERE EXISTS (SELECT 1 FROM members m WHERE m.org_id = acts.org_id AND m.id = acts.member_id AND m.team <> '');

-- A numeric score on reactions, for the customer's CSAT (1-5) and NPS
-- (0-10) to come. Employee reactions carry none (their sentiment is not a
-- rating), so existing rows stay NULL.
ALTER TABLE reactions ADD COLUMN score INTEGER CHECK (score BETWEEN 0 AND 10);

-- The audit entries written so far committed to decisions, acts and
-- reactions without these columns (see store/seal.go, sealTable.added):
-- from the next entry on, the digests cover them.
ALTER TABLE orgs ADD COLUMN audit_digest_v2_from INTEGER NOT NULL DEFAULT 0;
UPDATE orgs SET audit_digest_v2_from = audit_seq + 1;

-- Time windows per organisation (decisions, acts and refusals have theirs
-- since 00001).
CREATE INDEX reactions_created ON reactions (org_id, created_at);
CREATE INDEX approvals_created ON approvals (org_id, created_at);

-- +goose Down
DROP INDEX approvals_created;
DROP INDEX reactions_created;
ALTER TABLE orgs DROP COLUMN audit_digest_v2_from;
ALTER TABLE reactions DROP COLUMN score;
ALTER TABLE acts DROP COLUMN team;
ALTER TABLE decisions DROP COLUMN team;
