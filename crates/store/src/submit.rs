//! Storing a proof: the one transaction that makes a job's work take effect.

use sha2::{Digest, Sha256};

use sheaf_types::JobId;

use crate::error::{Result, StoreError};
use crate::model::{JobStatus, RewardEntry, SubmitOutcome};
use crate::proofs::{insert_proof_row, Placed};
use crate::rows::hex;
use crate::store::{Engine, WriteTx};
use crate::Store;

/// Lowercase hex SHA-256 of `bytes`: the address of a proof blob.
pub fn proof_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl Store {
    /// Stores the proof of a leased job, in one transaction: the blob's row (content-addressed,
    /// so an identical proof is kept once; with an object store the blob itself is written
    /// there first, whole, see [`crate::ProofBlobs`]), the job as `proved`, its one reward
    /// entry, and, when this was the last unproved child, the parent as `ready`; when the job
    /// is the root, the sequence as proved.
    ///
    /// The lease must be current at `now_ms`: the job `leased` to `prover` under `token`, not
    /// expired; else [`StoreError::StaleLease`]. A job already proved gives
    /// [`StoreError::AlreadyProved`] and nothing changes, so a retried submission is harmless.
    ///
    /// `prove_ms` is the proving time the prover reports, kept with the job for metrics; a
    /// negative one is [`StoreError::InvalidArgument`].
    #[allow(
        clippy::too_many_arguments,
        reason = "the lease (job, token, prover), the proof with its reward and proving time, and \
                  the clock are independent inputs the coordinator has at hand"
    )]
    pub async fn submit_proof(
        &self,
        job: JobId,
        token: i64,
        prover: &str,
        proof: &[u8],
        reward: RewardEntry,
        now_ms: i64,
        prove_ms: Option<i64>,
    ) -> Result<SubmitOutcome> {
        if let Some(ms) = prove_ms.filter(|ms| *ms < 0) {
            return Err(StoreError::InvalidArgument(format!(
                "reported proving time must not be negative, got {ms} ms"
            )));
        }
        let hash = proof_hash(proof);
        // The blob first, outside the transaction: the row that names it is written only once
        // it is whole (a put that fails leaves nothing referenced).
        let placed = self.place_blob(&hash, proof).await?;
        let submission = Submission {
            job,
            token,
            prover,
            proof,
            placed,
            hash,
            reward,
            now_ms,
            prove_ms,
        };
        let mut tx = self.begin_write().await?;
        let outcome = store_proof(&mut tx, &submission).await;
        fail::fail_point!("store::submit::before_commit");
        let outcome = tx.finish(outcome).await?;
        fail::fail_point!("store::submit::after_commit");
        if outcome.sequence_proved && placed == Placed::Object {
            // The top proof went into its row: its object is a copy nobody reads.
            if let Some(blobs) = &self.blobs {
                if let Err(e) = blobs.delete(&outcome.proof_hash).await {
                    tracing::warn!(target: "sheaf::store", %job, error = %e, "top proof's object copy not deleted");
                }
            }
        }
        tracing::debug!(
            target: "sheaf::store",
            %job,
            prover,
            token,
            proof_hash = %outcome.proof_hash,
            parent_ready = ?outcome.parent_ready,
            sequence_proved = outcome.sequence_proved,
            "stored proof"
        );
        Ok(outcome)
    }
}

/// One submission, as [`Store::submit_proof`] takes it.
struct Submission<'a> {
    job: JobId,
    token: i64,
    prover: &'a str,
    proof: &'a [u8],
    placed: Placed,
    hash: String,
    reward: RewardEntry,
    now_ms: i64,
    prove_ms: Option<i64>,
}

/// The body of [`Store::submit_proof`], inside its write transaction. A refusal is an error,
/// so the blob written first is rolled back with the rest.
async fn store_proof(tx: &mut WriteTx, s: &Submission<'_>) -> Result<SubmitOutcome> {
    let job = s.job;
    // The blob's row first: the job's row references it.
    insert_proof_row(tx, &s.hash, s.proof, s.placed).await?;
    // Takes effect only under the current lease. On PostgreSQL a concurrent submission of the
    // same job waits for this row, then finds it proved and changes nothing.
    let proved: Option<Option<JobId>> = sqlx::query_scalar(
        "UPDATE jobs SET status = 'proved', proof_hash = $5, proved_by = $3, \
         proved_ms = $4, prove_ms = $6, lease_holder = NULL, lease_expires_ms = NULL \
         WHERE id = $1 AND status = 'leased' AND lease_token = $2 \
         AND lease_holder = $3 AND lease_expires_ms > $4 \
         RETURNING parent",
    )
    .bind(job)
    .bind(s.token)
    .bind(s.prover)
    .bind(s.now_ms)
    .bind(&s.hash)
    .bind(s.prove_ms)
    .fetch_optional(tx.conn())
    .await?;
    let Some(parent) = proved else {
        let status: Option<JobStatus> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_optional(tx.conn())
            .await?;
        return Err(match status.ok_or(StoreError::UnknownJob(job))? {
            JobStatus::Proved => StoreError::AlreadyProved(job),
            _ => StoreError::StaleLease {
                job,
                token: s.token,
            },
        });
    };
    if parent.is_none() && s.placed == Placed::Object {
        // The top proof, which the chain verifies, stays in its row (see `crate::proofs`).
        sqlx::query("UPDATE proofs SET stored = 'row', bytes = $2 WHERE hash = $1")
            .bind(&s.hash)
            .bind(s.proof)
            .execute(tx.conn())
            .await?;
    }
    // An accepted proof ends the prover's run of abandoned leases: its next abandonment
    // starts the back-off from the base again.
    sqlx::query("UPDATE prover_backoff SET abandoned_in_row = 0 WHERE prover = $1")
        .bind(s.prover)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO rewards (job, sequence, prover, worker_pk, work_units, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(job)
    .bind(job.sequence)
    .bind(s.prover)
    .bind(s.reward.worker_pk.as_slice())
    .bind(s.reward.work_units)
    .bind(s.now_ms)
    .execute(tx.conn())
    .await?;

    let mut outcome = SubmitOutcome {
        proof_hash: s.hash.clone(),
        parent_ready: None,
        sequence_proved: false,
    };
    match parent {
        Some(parent) => {
            if tx.engine == Engine::Postgres {
                // Lock order is child, then parent. Sibling submissions serialize here, and
                // the release below, a statement of its own, reads the siblings after the
                // lock: the last of them sees all the others proved (no write skew). SQLite's
                // one writer serializes them anyway.
                sqlx::query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE")
                    .bind(parent)
                    .execute(tx.conn())
                    .await?;
            }
            // A cancelled parent stays cancelled; only a waiting one is released.
            outcome.parent_ready = sqlx::query_scalar(
                "UPDATE jobs SET status = 'ready' WHERE id = $1 AND status = 'waiting' \
                 AND NOT EXISTS \
                 (SELECT 1 FROM jobs WHERE parent = $1 AND status <> 'proved') \
                 RETURNING id",
            )
            .bind(parent)
            .fetch_optional(tx.conn())
            .await?;
        }
        None => {
            sqlx::query("UPDATE sequences SET proved_ms = $2 WHERE id = $1")
                .bind(job.sequence)
                .bind(s.now_ms)
                .execute(tx.conn())
                .await?;
            outcome.sequence_proved = true;
        }
    }
    Ok(outcome)
}
