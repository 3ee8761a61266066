-- Claims: a prover's claimable jobs are read by its worker key, in sequence order.
CREATE INDEX rewards_by_worker ON rewards (worker_pk, sequence);
