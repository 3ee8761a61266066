//! Storing a proof: the one transaction that makes a job's work take effect.

use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::model::{JobId, JobStatus, RewardEntry, SubmitOutcome};
use crate::rows::{parse_stored_id, parse_stored_status};
use crate::Store;

/// Status, lease token, holder, expiry and parent of the job being submitted.
type LeaseRow = (String, i64, Option<String>, Option<i64>, Option<String>);

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
            // Lock order is child, then parent. Sibling submissions serialize on the parent's
            // row, so the last of them sees all the others proved (no write skew on PostgreSQL).
            let select = format!(
                "SELECT status, lease_token, lease_holder, lease_expires_ms, parent \
                 FROM jobs WHERE id = $1{}",
                engine.for_update()
            );
            let row: Option<LeaseRow> = sqlx::query_as(&select)
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
            let (status, current_token, holder, expires, parent) =
                row.ok_or(StoreError::UnknownJob(job))?;
            match parse_stored_status(&status)? {
                JobStatus::Proved => return Err(StoreError::AlreadyProved(job)),
                JobStatus::Leased
                    if current_token == token
                        && holder.as_deref() == Some(prover)
                        && expires.is_some_and(|expires| now_ms < expires) => {}
                _ => return Err(StoreError::StaleLease { job, token }),
            }

            sqlx::query("INSERT INTO proofs (hash, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(&hash)
                .bind(proof)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE jobs SET status = 'proved', proof_hash = $2, proved_by = $3, \
                 proved_ms = $4, prove_ms = $5, lease_holder = NULL, lease_expires_ms = NULL \
                 WHERE id = $1",
            )
            .bind(&id)
            .bind(&hash)
            .bind(prover)
            .bind(now_ms)
            .bind(prove_ms)
            .execute(&mut *tx)
            .await?;
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
                    let lock = format!(
                        "SELECT status FROM jobs WHERE id = $1{}",
                        engine.for_update()
                    );
                    let parent_status: String = sqlx::query_scalar(&lock)
                        .bind(&parent)
                        .fetch_one(&mut *tx)
                        .await?;
                    let unproved: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM jobs WHERE parent = $1 AND status <> 'proved'",
                    )
                    .bind(&parent)
                    .fetch_one(&mut *tx)
                    .await?;
                    // A cancelled parent stays cancelled; only a waiting one is released.
                    if unproved == 0 && parent_status == JobStatus::Waiting.as_str() {
                        sqlx::query("UPDATE jobs SET status = 'ready' WHERE id = $1")
                            .bind(&parent)
                            .execute(&mut *tx)
                            .await?;
                        outcome.parent_ready = Some(parse_stored_id(&parent)?);
                    }
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
