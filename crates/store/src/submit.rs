//! Storing a proof: the one transaction that makes a job's work take effect.

use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::model::{JobId, JobStatus, RewardEntry, SubmitOutcome};
use crate::rows::{parse_stored_id, parse_stored_status};
use crate::store::Engine;
use crate::Store;

/// Lowercase hex SHA-256 of `bytes`: the address of a proof blob.
pub fn proof_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Store {
    /// Stores the proof of a leased job, in one transaction: the blob (content-addressed, so an
    /// identical proof is kept once), the job as `proved`, its one reward entry, and, when this
    /// was the last unproved child, the parent as `ready`; when the job is the root, the
    /// sequence as proved.
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
        let id = job.to_string();
        let outcome = write_tx!(self, |tx, engine| {
            // The blob first: the job's row references it. A refused submission rolls it back.
            sqlx::query("INSERT INTO proofs (hash, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(&hash)
                .bind(proof)
                .execute(&mut *tx)
                .await?;
            // Takes effect only under the current lease. On PostgreSQL a concurrent submission
            // of the same job waits for this row, then finds it proved and changes nothing.
            let proved: Option<(Option<String>,)> = sqlx::query_as(
                "UPDATE jobs SET status = 'proved', proof_hash = $5, proved_by = $3, \
                 proved_ms = $4, prove_ms = $6, lease_holder = NULL, lease_expires_ms = NULL \
                 WHERE id = $1 AND status = 'leased' AND lease_token = $2 \
                 AND lease_holder = $3 AND lease_expires_ms > $4 \
                 RETURNING parent",
            )
            .bind(&id)
            .bind(token)
            .bind(prover)
            .bind(now_ms)
            .bind(&hash)
            .bind(prove_ms)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((parent,)) = proved else {
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
                        .bind(&id)
                        .fetch_optional(&mut *tx)
                        .await?;
                return Err(
                    match parse_stored_status(&status.ok_or(StoreError::UnknownJob(job))?)? {
                        JobStatus::Proved => StoreError::AlreadyProved(job),
                        _ => StoreError::StaleLease { job, token },
                    },
                );
            };
            sqlx::query(
                "INSERT INTO rewards (job, sequence, prover, worker_pk, work_units, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(job.sequence)
            .bind(prover)
            .bind(reward.worker_pk.as_slice())
            .bind(reward.work_units)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;

            let mut outcome = SubmitOutcome {
                proof_hash: hash.clone(),
                parent_ready: None,
                sequence_proved: false,
            };
            match parent {
                Some(parent) => {
                    if engine == Engine::Postgres {
                        // Lock order is child, then parent. Sibling submissions serialize here,
                        // and the release below, a statement of its own, reads the siblings
                        // after the lock: the last of them sees all the others proved (no
                        // write skew). SQLite's one writer serializes them anyway.
                        sqlx::query("SELECT id FROM jobs WHERE id = $1 FOR UPDATE")
                            .bind(&parent)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // A cancelled parent stays cancelled; only a waiting one is released.
                    let released: Option<String> = sqlx::query_scalar(
                        "UPDATE jobs SET status = 'ready' WHERE id = $1 AND status = 'waiting' \
                         AND NOT EXISTS \
                         (SELECT 1 FROM jobs WHERE parent = $1 AND status <> 'proved') \
                         RETURNING id",
                    )
                    .bind(&parent)
                    .fetch_optional(&mut *tx)
                    .await?;
                    outcome.parent_ready = released.as_deref().map(parse_stored_id).transpose()?;
                }
                None => {
                    sqlx::query("UPDATE sequences SET proved_ms = $2 WHERE id = $1")
                        .bind(job.sequence)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                    outcome.sequence_proved = true;
                }
            }
            outcome
        });
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
