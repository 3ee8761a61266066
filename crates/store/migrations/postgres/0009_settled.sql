-- When the proof sender saw a sequence finalized on the base chain (milliseconds, its clock);
-- NULL until then, and always without a sender. The chain finalizes in order, so the settled
-- sequences are a prefix of those registered; a rollup block is settled when its sequence is.
ALTER TABLE sequences ADD COLUMN settled_ms BIGINT;
