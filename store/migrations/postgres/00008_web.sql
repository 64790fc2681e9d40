-- +goose Up
-- Server-side sessions of the web pages (github.com/alexedwards/scs): the
-- token is the cookie's value, data the encoded session, expiry in unix
-- nanoseconds. Expired rows are ignored on read and swept by serve.
CREATE TABLE sessions (
    token   TEXT   NOT NULL PRIMARY KEY,
    data    BYTEA  NOT NULL,
    expiry  BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expiry);

-- +goose Down
DROP TABLE sessions;
