-- A local transaction's client proved its signed half: the worker key that proof carries and
-- its circuit's work units, so the leaf gets its reward entry when its block is published and
-- the client can claim it like any prover. NULL for network transactions (and for local ones
-- stored before this migration, whose leaves then have no reward entry).
ALTER TABLE rollup_transactions ADD COLUMN local_worker_pk BLOB;
ALTER TABLE rollup_transactions ADD COLUMN local_work_units INTEGER;
