-- +goose Up
-- The manager's desk. The audit trail filtered by action, newest first,
-- without walking every entry of the organisation (an action that is rare
-- or absent would otherwise read the whole trail). Today's budget accounts
-- (the current period) without reading every past period: accounts only
-- gain rows, one per subject and period, and an update of a balance does
-- not touch this index.
CREATE INDEX audit_log_action ON audit_log (org_id, action, seq);
CREATE INDEX budget_accounts_period ON budget_accounts (org_id, period);

-- +goose Down
DROP INDEX budget_accounts_period;
DROP INDEX audit_log_action;
