-- Submissions refused for the prover's own fault (a proof that does not verify, a stale lease,
-- a job proved already, …), counted per prover and reason, so an operator sees which provers
-- keep failing (`sheaf provers list`). Not a log: one row per (prover, reason), the latest time.
CREATE TABLE rejections (
    prover   TEXT   NOT NULL,
    reason   TEXT   NOT NULL,
    count    BIGINT NOT NULL,
    last_ms  BIGINT NOT NULL,
    PRIMARY KEY (prover, reason)
);
