-- Provers that let a lease on a job expire, once per (job, prover): a job is dead when
-- max_attempts distinct provers abandoned it, so one prover walking away from a job again and
-- again cannot kill it, while a job that crashes every prover still dies. An operator requeue
-- clears the job's rows with its attempts.
CREATE TABLE lease_abandons (
    job           TEXT    NOT NULL REFERENCES jobs (id),
    prover        TEXT    NOT NULL,
    abandoned_ms  INTEGER  NOT NULL,
    PRIMARY KEY (job, prover)
);

-- What abandoning costs a prover: its expiry sweeps with an abandoned lease since its last
-- accepted proof, and the time before which it may not lease (the back-off they earned).
CREATE TABLE prover_backoff (
    prover              TEXT    PRIMARY KEY,
    abandoned_in_row    INTEGER  NOT NULL,
    suspended_until_ms  INTEGER  NOT NULL
);
