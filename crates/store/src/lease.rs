//! Leases: handing jobs to provers, keeping them alive, taking them back.

use crate::error::{Result, StoreError};
use crate::model::{ExpiredLeases, JobId, JobStatus, Lease};
use crate::rows::{parse_stored_id, sorted_ids};
use crate::Store;

/// Lease expiry `now_ms + ttl_ms`, refusing a non-positive TTL or an overflow.
fn expiry(now_ms: i64, ttl_ms: i64) -> Result<i64> {
    if ttl_ms <= 0 {
        return Err(StoreError::InvalidArgument(format!(
            "lease TTL must be positive, got {ttl_ms} ms"
        )));
    }
    now_ms
        .checked_add(ttl_ms)
        .ok_or_else(|| StoreError::InvalidArgument(format!("{now_ms} ms + {ttl_ms} ms overflows")))
}

impl Store {
    /// Leases the next `ready` job to `prover` until `now_ms + ttl_ms`, or returns `None` when
    /// nothing is ready.
    ///
    /// Critical path first: the lowest sequence (it settles first), then the highest level (it
    /// unblocks the root soonest), then the lowest index. The lease counts one attempt and
    /// carries a new fencing token.
    pub async fn lease_next_job(
        &self,
        prover: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>> {
        let expires_ms = expiry(now_ms, ttl_ms)?;
        let lease = write_tx!(self, |tx, engine| {
            let select = format!(
                "SELECT id FROM jobs WHERE status = 'ready' \
                 ORDER BY sequence, level DESC, idx LIMIT 1{}",
                engine.claim()
            );
            let Some(id) = sqlx::query_scalar::<_, String>(&select)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let (attempt, token, circuit, inputs): (i64, i64, String, Vec<u8>) = sqlx::query_as(
                "UPDATE jobs SET status = 'leased', attempts = attempts + 1, \
                 lease_token = lease_token + 1, lease_holder = $2, lease_expires_ms = $3 \
                 WHERE id = $1 RETURNING attempts, lease_token, circuit, inputs",
            )
            .bind(&id)
            .bind(prover)
            .bind(expires_ms)
            .fetch_one(&mut *tx)
            .await?;
            Lease {
                job: parse_stored_id(&id)?,
                token,
                attempt,
                holder: prover.to_owned(),
                expires_ms,
                circuit,
                inputs,
            }
        });
        tracing::debug!(
            target: "sheaf::store",
            job = %lease.job,
            prover,
            token = lease.token,
            attempt = lease.attempt,
            expires_ms,
            "leased job"
        );
        Ok(Some(lease))
    }

    /// Leases `prover` holds that have not expired at `now_ms`, to enforce its concurrency cap.
    pub async fn count_active_leases(&self, prover: &str, now_ms: i64) -> Result<i64> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs \
                 WHERE lease_holder = $1 AND status = 'leased' AND lease_expires_ms > $2",
            )
            .bind(prover)
            .bind(now_ms)
            .fetch_one(pool)
            .await?)
        })
    }

    /// Extends a current lease to `now_ms + ttl_ms` and returns the new expiry.
    ///
    /// A lease is current while the job is `leased` under this token and `now_ms` is before its
    /// expiry; otherwise [`StoreError::StaleLease`] (an expired lease cannot be revived, since
    /// the job may already be with another prover).
    pub async fn heartbeat(&self, job: JobId, token: i64, now_ms: i64, ttl_ms: i64) -> Result<i64> {
        let expires_ms = expiry(now_ms, ttl_ms)?;
        let updated = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET lease_expires_ms = $4 \
                 WHERE id = $1 AND status = 'leased' AND lease_token = $2 \
                 AND lease_expires_ms > $3",
            )
            .bind(job.to_string())
            .bind(token)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            // Tell an unknown id from a stale lease; a read after the failed update is enough,
            // since either way nothing changed.
            self.status_of(job).await?;
            return Err(StoreError::StaleLease { job, token });
        }
        Ok(expires_ms)
    }

    /// Takes back every lease expired at `now_ms` (expiry ≤ now): the job goes back to
    /// `ready`, or to `dead` once it has used `max_attempts` attempts.
    pub async fn requeue_expired(&self, now_ms: i64, max_attempts: i64) -> Result<ExpiredLeases> {
        if max_attempts < 1 {
            return Err(StoreError::InvalidArgument(format!(
                "max_attempts must be at least 1, got {max_attempts}"
            )));
        }
        let expired = write_tx!(self, |tx, _engine| {
            let dead: Vec<String> = sqlx::query_scalar(
                "UPDATE jobs SET status = 'dead', lease_holder = NULL, lease_expires_ms = NULL \
                 WHERE status = 'leased' AND lease_expires_ms <= $1 AND attempts >= $2 \
                 RETURNING id",
            )
            .bind(now_ms)
            .bind(max_attempts)
            .fetch_all(&mut *tx)
            .await?;
            let requeued: Vec<String> = sqlx::query_scalar(
                "UPDATE jobs SET status = 'ready', lease_holder = NULL, lease_expires_ms = NULL \
                 WHERE status = 'leased' AND lease_expires_ms <= $1 \
                 RETURNING id",
            )
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?;
            ExpiredLeases {
                requeued: sorted_ids(&requeued)?,
                dead: sorted_ids(&dead)?,
            }
        });
        for job in &expired.requeued {
            tracing::info!(target: "sheaf::store", %job, "lease expired, job requeued");
        }
        for job in &expired.dead {
            tracing::warn!(target: "sheaf::store", %job, max_attempts, "attempts exhausted, job dead");
        }
        Ok(expired)
    }

    /// State of a job, or [`StoreError::UnknownJob`].
    pub(crate) async fn status_of(&self, job: JobId) -> Result<JobStatus> {
        let status: Option<String> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
                .bind(job.to_string())
                .fetch_optional(pool)
                .await?
        });
        crate::rows::parse_stored_status(&status.ok_or(StoreError::UnknownJob(job))?)
    }
}
