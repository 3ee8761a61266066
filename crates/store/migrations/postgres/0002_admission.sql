-- Sheaf store, admission control (PostgreSQL): lease timing, per-epoch lease counts, request
-- nonces.

-- When the latest lease was granted, and how long the prover reported proving took.
ALTER TABLE jobs ADD COLUMN leased_ms BIGINT;
ALTER TABLE jobs ADD COLUMN prove_ms BIGINT;

-- lease_admitted: the live leases of one prover.
DROP INDEX jobs_by_lease_holder;
CREATE INDEX jobs_by_lease_holder ON jobs (lease_holder, status, lease_expires_ms);

-- Leases granted to a prover in one rate-limit epoch (epoch = now_ms / epoch_ms). Only the
-- current epoch's row of a prover is kept.
CREATE TABLE lease_counts (
    prover  TEXT    NOT NULL,
    epoch   BIGINT  NOT NULL,
    count   BIGINT  NOT NULL,
    PRIMARY KEY (prover, epoch)
);

-- Request nonces already seen, per signing key, until they expire: replay protection.
CREATE TABLE nonces (
    key         TEXT    NOT NULL,
    nonce       TEXT    NOT NULL,
    expires_ms  BIGINT  NOT NULL,
    PRIMARY KEY (key, nonce)
);

CREATE INDEX nonces_by_expiry ON nonces (expires_ms);

-- A request's key names exactly one prover.
CREATE UNIQUE INDEX provers_by_public_key ON provers (public_key);

-- Proofs are random-looking bytes that do not compress: store them out of line without
-- trying. The default, EXTENDED, runs pglz over every blob first, which halved the store
-- bench's lease→submit cycles per second.
ALTER TABLE proofs ALTER COLUMN bytes SET STORAGE EXTERNAL;
