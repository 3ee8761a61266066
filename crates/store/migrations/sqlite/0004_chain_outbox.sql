-- The proof sender's outbox. Every chain transaction it signs is stored here before it is
-- sent, so a restarted sender resends the same signed bytes (the chain's account nonce makes a
-- resend idempotent) and never signs a second transaction for the same step. A step is one
-- kind of transaction for one sequence in one settlement window (attempt).
CREATE TABLE chain_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence         INTEGER NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('proof_hash', 'proof')),
    attempt          INTEGER NOT NULL,
    tx_hash          TEXT    NOT NULL UNIQUE,
    tx               BLOB    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'included', 'failed')),
    created_ms       INTEGER NOT NULL,
    sent_ms          INTEGER,
    included_height  INTEGER,
    error            TEXT,
    UNIQUE (sequence, kind, attempt)
);

-- outbox_open: the transactions still in flight, in sequence order.
CREATE INDEX chain_outbox_open ON chain_outbox (sequence, id) WHERE status IN ('pending', 'sent');
