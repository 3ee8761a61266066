-- Sequence registrations join the outbox: the coordinator registers each sequence's statement on
-- chain with the same discipline as its proofs (signed, stored, then sent; resent after a
-- restart, never signed twice). SQLite cannot change a CHECK constraint, so the table is rebuilt.
CREATE TABLE chain_outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence         INTEGER NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('register', 'proof_hash', 'proof')),
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
INSERT INTO chain_outbox_new SELECT * FROM chain_outbox;
DROP TABLE chain_outbox;
ALTER TABLE chain_outbox_new RENAME TO chain_outbox;

-- outbox_open: the transactions still in flight, in sequence order.
CREATE INDEX chain_outbox_open ON chain_outbox (sequence, id) WHERE status IN ('pending', 'sent');
