-- Sheaf store, initial schema (PostgreSQL). Times are milliseconds of the coordinator's clock.

-- One row per planned sequence; proved_ms is set when its root job is proved.
CREATE TABLE sequences (
    id          BIGINT  PRIMARY KEY,
    leaves      BIGINT  NOT NULL,
    root_job    TEXT    NOT NULL,
    created_ms  BIGINT  NOT NULL,
    proved_ms   BIGINT
);

-- Proof blobs, addressed by the lowercase hex SHA-256 of their bytes.
CREATE TABLE proofs (
    hash   TEXT PRIMARY KEY,
    bytes  BYTEA NOT NULL
);

-- One row per node of a job tree. id is JobId's string form s{sequence}-l{level}-i{idx}.
CREATE TABLE jobs (
    id                TEXT    PRIMARY KEY,
    sequence          BIGINT  NOT NULL REFERENCES sequences (id),
    level             INTEGER NOT NULL,
    idx               BIGINT  NOT NULL,
    circuit           TEXT    NOT NULL,
    inputs            BYTEA   NOT NULL,
    -- The aggregating job and this job's place among its children; NULL for the root.
    parent            TEXT    REFERENCES jobs (id) DEFERRABLE INITIALLY DEFERRED,
    position          BIGINT,
    status            TEXT    NOT NULL
        CHECK (status IN ('waiting', 'ready', 'leased', 'proved', 'dead', 'cancelled')),
    -- Leases counted against the retry budget; an operator requeue resets it.
    attempts          BIGINT  NOT NULL DEFAULT 0,
    -- Fencing token: leases ever granted on this job. Never reset, so an old token never
    -- becomes current again.
    lease_token       BIGINT  NOT NULL DEFAULT 0,
    lease_holder      TEXT,
    lease_expires_ms  BIGINT,
    proof_hash        TEXT    REFERENCES proofs (hash),
    proved_by         TEXT,
    proved_ms         BIGINT,
    UNIQUE (sequence, level, idx),
    UNIQUE (parent, position)
);

-- lease_next_job: ready jobs, critical path first.
CREATE INDEX jobs_by_priority ON jobs (status, sequence, level DESC, idx);
-- requeue_expired.
CREATE INDEX jobs_by_lease_expiry ON jobs (status, lease_expires_ms);
-- count_active_leases.
CREATE INDEX jobs_by_lease_holder ON jobs (lease_holder);

-- Exactly one reward entry per proved job.
CREATE TABLE rewards (
    job         TEXT    PRIMARY KEY REFERENCES jobs (id),
    sequence    BIGINT  NOT NULL REFERENCES sequences (id),
    prover      TEXT    NOT NULL,
    worker_pk   BYTEA   NOT NULL,
    work_units  BIGINT  NOT NULL,
    created_ms  BIGINT  NOT NULL
);

CREATE INDEX rewards_by_sequence ON rewards (sequence);

-- Registered provers: the key that signs their requests and their limits.
CREATE TABLE provers (
    id              TEXT    PRIMARY KEY,
    public_key      BYTEA   NOT NULL,
    worker_pk       BYTEA   NOT NULL,
    rate_limit      BIGINT  NOT NULL,
    max_concurrent  BIGINT  NOT NULL
);
