-- Attempt accounting shared by every replica (issue 12): sign-in and re-authentication attempts are reserved here
-- (kind 0, pending) before the password is checked and settled afterwards (kind 1, failure; kind 2, the last
-- success of a (user, address) pair, which exempts that address from the user's ceiling). Keys are keyed hashes
-- (HMAC with the shared pepper) of what is limited, never the identifiers themselves. Rows age out of every window
-- and are swept from time to time.
CREATE TABLE attempt_events (
    id     BIGSERIAL PRIMARY KEY,
    key    BYTEA NOT NULL,
    kind   SMALLINT NOT NULL,
    at_ms  BIGINT NOT NULL
);
CREATE INDEX attempt_events_key ON attempt_events (key, kind, at_ms);
