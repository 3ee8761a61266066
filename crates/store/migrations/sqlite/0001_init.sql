-- Sheaf store, initial schema (SQLite). Times are milliseconds of the coordinator's clock.

-- One row per planned sequence; proved_ms is set when its root job is proved.
CREATE TABLE sequences (
    id          INTEGER PRIMARY KEY,
    leaves      INTEGER NOT NULL,
    root_job    TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    proved_ms   INTEGER
);

-- Proof blobs, addressed by the lowercase hex SHA-256 of their bytes.
CREATE TABLE proofs (
    hash   TEXT PRIMARY KEY,
    bytes  BLOB NOT NULL
);

-- One row per node of a job tree. id is JobId's string form s{sequence}-l{level}-i{idx}.
CREATE TABLE jobs (
    id                TEXT    PRIMARY KEY,
    sequence          INTEGER NOT NULL REFERENCES sequences (id),
    level             INTEGER NOT NULL,
    idx               INTEGER NOT NULL,
    circuit           TEXT    NOT NULL,
    inputs            BLOB    NOT NULL,
    -- The aggregating job and this job's place among its children; NULL for the root.
    parent            TEXT    REFERENCES jobs (id) DEFERRABLE INITIALLY DEFERRED,
    position          INTEGER,
    status            TEXT    NOT NULL
        CHECK (status IN ('waiting', 'ready', 'leased', 'proved', 'dead', 'cancelled')),
    -- Leases counted against the retry budget; an operator requeue resets it.
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- Fencing token: leases ever granted on this job. Never reset, so an old token never
    -- becomes current again.
    lease_token       INTEGER NOT NULL DEFAULT 0,
    lease_holder      TEXT,
    lease_expires_ms  INTEGER,
    proof_hash        TEXT    REFERENCES proofs (hash),
    proved_by         TEXT,
    proved_ms         INTEGER,
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
    sequence    INTEGER NOT NULL REFERENCES sequences (id),
    prover      TEXT    NOT NULL,
    worker_pk   BLOB    NOT NULL,
    work_units  INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE INDEX rewards_by_sequence ON rewards (sequence);

-- Registered provers: the key that signs their requests and their limits.
CREATE TABLE provers (
    id              TEXT    PRIMARY KEY,
    public_key      BLOB    NOT NULL,
    worker_pk       BLOB    NOT NULL,
    rate_limit      INTEGER NOT NULL,
    max_concurrent  INTEGER NOT NULL
);
