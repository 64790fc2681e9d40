-- +goose Up
-- An act reported after it was done at the counter (the waiter gave the
-- basket, then logged it): the decision and its act say so.
ALTER TABLE decisions ADD COLUMN after_the_fact INTEGER NOT NULL DEFAULT 0;
ALTER TABLE acts ADD COLUMN after_the_fact INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE acts DROP COLUMN after_the_fact;
ALTER TABLE decisions DROP COLUMN after_the_fact;
