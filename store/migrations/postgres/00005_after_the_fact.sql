-- +goose Up
-- An act reported after it was done at the counter (the waiter gave the
-- basket, then logged it): the decision and its act say so.
ALTER TABLE decisions ADD COLUMN after_the_fact BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE acts ADD COLUMN after_the_fact BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE acts DROP COLUMN after_the_fact;
ALTER TABLE decisions DROP COLUMN after_the_fact;
