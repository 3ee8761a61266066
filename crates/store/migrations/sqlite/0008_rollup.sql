-- The rollup block producer's persistence (issue 13). A block is published before it is proved:
-- its row, its transactions marked included and its proving sequence (a `sequences` row with its
-- job tree) commit in one transaction, so a block never lacks its tree nor a tree its block.
-- Headers and transactions are stored as the producer encodes them (JSON); the store reads only
-- the columns beside them. A restarted producer replays the blocks' transactions in order.

-- Published blocks, numbered consecutively from the first one published.
CREATE TABLE rollup_blocks (
    number        INTEGER PRIMARY KEY CHECK (number >= 1),
    commitment    BLOB    NOT NULL CHECK (length(commitment) = 32),
    header        BLOB    NOT NULL,
    -- The sequence proving the block; proved when its root job is.
    sequence      INTEGER NOT NULL UNIQUE REFERENCES sequences (id),
    tx_count      INTEGER NOT NULL CHECK (tx_count >= 0),
    published_ms  INTEGER NOT NULL
);

-- Transactions as they arrive: pending until a block includes them (at `position` of `block`)
-- or the producer reverts them (with the reason).
CREATE TABLE rollup_transactions (
    id           BLOB    PRIMARY KEY CHECK (length(id) = 32),
    body         BLOB    NOT NULL,
    -- A client's own proof of its transaction (tx kernel), for local transactions.
    local_proof  BLOB,
    received_ms  INTEGER NOT NULL,
    block        INTEGER REFERENCES rollup_blocks (number),
    position     INTEGER,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'included', 'reverted')),
    reason       TEXT,
    CHECK ((status = 'included' AND block IS NOT NULL AND position IS NOT NULL)
        OR (status <> 'included' AND block IS NULL AND position IS NULL))
);

-- pending_rollup_transactions: arrival order.
CREATE INDEX rollup_transactions_by_arrival ON rollup_transactions (status, received_ms, id);
-- rollup_block_transactions: block order; one transaction per place.
CREATE UNIQUE INDEX rollup_transactions_by_block ON rollup_transactions (block, position);
