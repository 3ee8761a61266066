-- Proof blobs of a local directory live in append-only segment files (see the store crate's
-- blobs module): a row with `stored` = 'segment' names the segment file by its id and where
-- in it the blob starts; `size` is its length.
ALTER TABLE proofs ADD COLUMN segment INTEGER;
ALTER TABLE proofs ADD COLUMN seg_offset INTEGER;
-- The sweep asks, per sealed segment, whether any row still names a blob in it.
CREATE INDEX proofs_by_segment ON proofs (segment) WHERE stored = 'segment';
