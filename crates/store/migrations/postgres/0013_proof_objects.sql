-- Proof blobs may live in an object store (see the store crate's blobs module): the row then
-- keeps the hash and the size, with empty bytes. `stored` says where the bytes are: 'row' (in
-- `bytes`), 'object' (the object store's proofs/<hash>), or 'collected' (deleted once its
-- sequence's claims window closed).
ALTER TABLE proofs ADD COLUMN stored TEXT NOT NULL DEFAULT 'row';
ALTER TABLE proofs ADD COLUMN size BIGINT;
UPDATE proofs SET size = LENGTH(bytes);
-- When a sequence's proofs, all but its top one, were collected; NULL until then. A sequence
-- whose proofs are collected has no claimable rewards left.
ALTER TABLE sequences ADD COLUMN proofs_collected_ms BIGINT;
