-- Sequence registrations join the outbox: the coordinator registers each sequence's statement on
-- chain with the same discipline as its proofs (signed, stored, then sent; resent after a
-- restart, never signed twice).
ALTER TABLE chain_outbox DROP CONSTRAINT chain_outbox_kind_check;
ALTER TABLE chain_outbox ADD CONSTRAINT chain_outbox_kind_check
    CHECK (kind IN ('register', 'proof_hash', 'proof'));
