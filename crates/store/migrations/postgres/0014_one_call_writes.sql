-- A lease and a submission as one call each (called from the store crate's `lease.rs` and
-- `submit.rs`): their statements run inside the server, so a lease→submit cycle is
-- two round trips instead of fifteen. Each function runs as its caller's one statement, in a
-- transaction of its own; each statement inside reads a snapshot of its own (READ COMMITTED,
-- VOLATILE), so a count read after a row lock was waited for sees what the lock's holder
-- committed.

-- Leases the next ready job to prover p_prover at p_now until p_expires if its limits admit
-- one more lease in epoch p_epoch. One row: the prover's standing (NULL limits when it is not
-- registered) and the leased job (NULL columns when refused or when nothing is ready). The
-- caller tells the outcome from the standing with the same rules (`Standing::refusal`).
CREATE FUNCTION sheaf_lease(p_prover TEXT, p_now BIGINT, p_expires BIGINT, p_epoch BIGINT)
RETURNS TABLE (
    rate_limit BIGINT, max_concurrent BIGINT, abandoned_in_row BIGINT,
    suspended_until_ms BIGINT, active BIGINT, used BIGINT,
    id TEXT, attempts BIGINT, lease_token BIGINT, circuit TEXT, inputs BYTEA
)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- A lease is no part of the ledger: its commit does not wait for the WAL flush.
    PERFORM set_config('synchronous_commit', 'off', true);
    -- Serializes the prover's lease requests across replicas.
    PERFORM 1 FROM provers p WHERE p.id = p_prover FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT p.rate_limit, p.max_concurrent, b.abandoned_in_row, b.suspended_until_ms,
           (SELECT COUNT(*) FROM jobs j WHERE j.lease_holder = p_prover
             AND j.status = 'leased' AND j.lease_expires_ms > p_now),
           (SELECT c.count FROM lease_counts c WHERE c.prover = p_prover AND c.epoch = p_epoch)
      INTO rate_limit, max_concurrent, abandoned_in_row, suspended_until_ms, active, used
      FROM provers p LEFT JOIN prover_backoff b ON b.prover = p.id WHERE p.id = p_prover;
    IF (abandoned_in_row IS NOT NULL AND p_now < suspended_until_ms)
       OR active >= max_concurrent
       OR COALESCE(used, 0) >= rate_limit THEN
        RETURN NEXT;
        RETURN;
    END IF;
    UPDATE jobs j SET status = 'leased', attempts = j.attempts + 1,
           lease_token = j.lease_token + 1, lease_holder = p_prover,
           lease_expires_ms = p_expires, leased_ms = p_now
     WHERE j.id = (SELECT r.id FROM jobs r WHERE r.status = 'ready'
                   ORDER BY r.sequence, r.level DESC, r.idx LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING j.id, j.attempts, j.lease_token, j.circuit, j.inputs
      INTO id, attempts, lease_token, circuit, inputs;
    IF FOUND THEN
        INSERT INTO lease_counts AS c (prover, epoch, count) VALUES (p_prover, p_epoch, 1)
            ON CONFLICT (prover, epoch) DO UPDATE SET count = c.count + 1;
        IF used IS NULL THEN
            DELETE FROM lease_counts c WHERE c.prover = p_prover AND c.epoch < p_epoch;
        END IF;
    END IF;
    RETURN NEXT;
END
$$;

-- Stores the proof of job p_job (of sequence p_sequence) leased to p_prover under p_token, at
-- p_now: the blob's row (p_stored 'row' with p_bytes, or 'object' with empty bytes; p_proof is
-- the proof, put into the row if the job is the root), the job proved, the prover's back-off
-- reset, the reward entry, and the parent released or the sequence proved. One row: the
-- job's state ('unknown' if none) when the lease is not current, and nothing changed, or
-- NULL; the parent if it became ready; 1 if the sequence is now proved.
CREATE FUNCTION sheaf_submit(
    p_job TEXT, p_sequence BIGINT, p_token BIGINT, p_prover TEXT, p_now BIGINT,
    p_hash TEXT, p_bytes BYTEA, p_stored TEXT, p_size BIGINT, p_proof BYTEA,
    p_prove_ms BIGINT, p_worker_pk BYTEA, p_work_units BIGINT
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
    INSERT INTO proofs (hash, bytes, stored, size) VALUES (p_hash, p_bytes, p_stored, p_size)
        ON CONFLICT DO NOTHING;
    UPDATE jobs j SET status = 'proved', proof_hash = p_hash, proved_by = p_prover,
           proved_ms = p_now, prove_ms = p_prove_ms, lease_holder = NULL,
           lease_expires_ms = NULL
     WHERE j.id = p_job;
    IF v_job.parent IS NULL AND p_stored = 'object' THEN
        -- The top proof, which the chain verifies, stays in its row.
        UPDATE proofs SET stored = 'row', bytes = p_proof WHERE hash = p_hash;
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
