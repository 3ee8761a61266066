-- Proof blobs of a local directory live in append-only segment files (see the store crate's
-- blobs module): a row with `stored` = 'segment' names the segment file by its id and where
-- in it the blob starts; `size` is its length.
ALTER TABLE proofs ADD COLUMN segment BIGINT;
ALTER TABLE proofs ADD COLUMN seg_offset BIGINT;
-- The sweep asks, per sealed segment, whether any row still names a blob in it.
CREATE INDEX proofs_by_segment ON proofs (segment) WHERE stored = 'segment';

-- sheaf_submit (0014) with the segment and offset of a blob in a segment, and the proof for
-- the root's row only when asked.
DROP FUNCTION sheaf_submit(TEXT, BIGINT, BIGINT, TEXT, BIGINT, TEXT, BYTEA, TEXT, BIGINT, BYTEA,
    BIGINT, BYTEA, BIGINT);

-- Stores the proof of job p_job (of sequence p_sequence) leased to p_prover under p_token, at
-- p_now: the blob's row (p_stored 'row' with p_bytes, 'object' with empty bytes, or 'segment'
-- with empty bytes at p_seg_offset of segment p_segment; p_proof is the proof, put into the
-- row if the job is the root: when it is empty there, the answer is 'needs_proof' and nothing
-- changed, so other jobs' proofs are not sent twice), the job proved, the prover's back-off
-- reset, the reward entry, and the parent released or the sequence proved. One row: the
-- job's state ('unknown' if none) when the lease is not current, and nothing changed, or
-- NULL; the parent if it became ready; 1 if the sequence is now proved.
CREATE FUNCTION sheaf_submit(
    p_job TEXT, p_sequence BIGINT, p_token BIGINT, p_prover TEXT, p_now BIGINT,
    p_hash TEXT, p_bytes BYTEA, p_stored TEXT, p_size BIGINT, p_proof BYTEA,
    p_prove_ms BIGINT, p_worker_pk BYTEA, p_work_units BIGINT, p_segment BIGINT,
    p_seg_offset BIGINT
)
RETURNS TABLE (refused_status TEXT, parent_ready TEXT, sequence_proved BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_job RECORD;
BEGIN
    sequence_proved := 0;
    -- The job's row lock: a concurrent submission of the same job waits here, then reads
    -- the job proved and changes nothing.
    SELECT j.status, j.lease_token, j.lease_holder, j.lease_expires_ms, j.parent
      INTO v_job FROM jobs j WHERE j.id = p_job FOR UPDATE;
    IF NOT FOUND THEN
        refused_status := 'unknown';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_job.status <> 'leased' OR v_job.lease_token <> p_token
       OR v_job.lease_holder IS DISTINCT FROM p_prover OR v_job.lease_expires_ms <= p_now THEN
        refused_status := v_job.status;
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_job.parent IS NULL AND p_stored <> 'row' AND length(p_proof) = 0 THEN
        refused_status := 'needs_proof';
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO proofs (hash, bytes, stored, size, segment, seg_offset)
        VALUES (p_hash, p_bytes, p_stored, p_size, p_segment, p_seg_offset)
        ON CONFLICT DO NOTHING;
    UPDATE jobs j SET status = 'proved', proof_hash = p_hash, proved_by = p_prover,
           proved_ms = p_now, prove_ms = p_prove_ms, lease_holder = NULL,
           lease_expires_ms = NULL
     WHERE j.id = p_job;
    IF v_job.parent IS NULL AND p_stored <> 'row' THEN
        -- The top proof, which the chain verifies, stays in its row.
        UPDATE proofs SET stored = 'row', bytes = p_proof, segment = NULL, seg_offset = NULL
         WHERE hash = p_hash;
    END IF;
    UPDATE prover_backoff SET abandoned_in_row = 0 WHERE prover = p_prover;
    INSERT INTO rewards (job, sequence, prover, worker_pk, work_units, created_ms)
        VALUES (p_job, p_sequence, p_prover, p_worker_pk, p_work_units, p_now);
    IF v_job.parent IS NOT NULL THEN
        -- Lock order is child, then parent. Sibling submissions serialize here, and the
        -- release below reads the siblings after the lock: the last of them sees all the
        -- others proved.
        PERFORM 1 FROM jobs j WHERE j.id = v_job.parent FOR UPDATE;
        UPDATE jobs j SET status = 'ready'
         WHERE j.id = v_job.parent AND j.status = 'waiting'
           AND NOT EXISTS (SELECT 1 FROM jobs c
                            WHERE c.parent = v_job.parent AND c.status <> 'proved')
        RETURNING j.id INTO parent_ready;
    ELSE
        UPDATE sequences SET proved_ms = p_now WHERE id = p_sequence;
        sequence_proved := 1;
    END IF;
    RETURN NEXT;
END
$$;
