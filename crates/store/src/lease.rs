//! Leases: handing jobs to provers, keeping them alive, taking them back.

use crate::error::{Result, StoreError};
use crate::model::{ExpiredLeases, JobId, JobStatus, Lease, LeaseOutcome};
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

/// Inside write transaction `$tx` on `$engine`, leases the next `ready` job to `$prover` until
/// `$expires_ms`, granted at `$now_ms`; evaluates to the [`Lease`], or `None` when nothing is
/// ready. Shared by every way of leasing, so they all hand out jobs in the same order.
///
/// Critical path first: the lowest sequence (it settles first), then the highest level (it
/// unblocks the root soonest), then the lowest index. One statement picks and updates the row;
/// on PostgreSQL the pick skips rows that concurrent claimers hold.
///
/// On PostgreSQL the transaction commits without waiting for its WAL flush
/// (`synchronous_commit = off`), saving one of the two fsyncs of a lease→submit cycle. A
/// database crash can forget leases granted in the last few hundred milliseconds, which is
/// the same as those leases expiring at once: the jobs are `ready` again, and a forgotten
/// lease's submission is refused as stale unless the same prover leased the job again. A
/// submission commits synchronously, and its flush makes every earlier commit durable too.
macro_rules! claim_next_job {
    ($tx:ident, $engine:ident, $prover:expr, $now_ms:expr, $expires_ms:expr) => {{
        if $engine == $crate::store::Engine::Postgres {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *$tx)
                .await?;
        }
        let claim = format!(
            "UPDATE jobs SET status = 'leased', attempts = attempts + 1, \
             lease_token = lease_token + 1, lease_holder = $1, lease_expires_ms = $2, \
             leased_ms = $3 \
             WHERE id = (SELECT id FROM jobs WHERE status = 'ready' \
             ORDER BY sequence, level DESC, idx LIMIT 1{}) \
             RETURNING id, attempts, lease_token, circuit, inputs",
            $engine.claim()
        );
        let row: Option<(String, i64, i64, String, Vec<u8>)> = sqlx::query_as(&claim)
            .bind($prover)
            .bind($expires_ms)
            .bind($now_ms)
            .fetch_optional(&mut *$tx)
            .await?;
        match row {
            Some((id, attempt, token, circuit, inputs)) => Some(Lease {
                job: parse_stored_id(&id)?,
                token,
                attempt,
                holder: $prover.to_owned(),
                expires_ms: $expires_ms,
                circuit,
                inputs,
            }),
            None => None,
        }
    }};
}

impl Store {
    /// Leases the next `ready` job to `prover` until `now_ms + ttl_ms`, or returns `None` when
    /// nothing is ready. No limits apply; see [`Store::lease_admitted`] for a prover's.
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
            claim_next_job!(tx, engine, prover, now_ms, expires_ms)
        });
        if let Some(lease) = &lease {
            log_lease(lease);
        }
        Ok(lease)
    }

    /// Leases the next `ready` job to a registered `prover`, as [`Store::lease_next_job`] does,
    /// if its limits admit one more lease; all in one transaction, so concurrent requests (and
    /// coordinator replicas) cannot both pass a limit with one slot left.
    ///
    /// In order: a prover that is not registered is [`StoreError::UnknownProver`]; one holding
    /// `max_concurrent` unexpired leases gets [`LeaseOutcome::TooManyLeases`]; one granted
    /// `rate_limit` leases in the current epoch (`now_ms / epoch_ms`) gets
    /// [`LeaseOutcome::RateLimited`]; then a ready job is leased and counted in the epoch, or
    /// the answer is [`LeaseOutcome::NoWork`], which costs no rate. A non-positive `epoch_ms` or
    /// `ttl_ms` is [`StoreError::InvalidArgument`].
    pub async fn lease_admitted(
        &self,
        prover: &str,
        now_ms: i64,
        ttl_ms: i64,
        epoch_ms: i64,
    ) -> Result<LeaseOutcome> {
        let expires_ms = expiry(now_ms, ttl_ms)?;
        if epoch_ms <= 0 {
            return Err(StoreError::InvalidArgument(format!(
                "rate-limit epoch must be positive, got {epoch_ms} ms"
            )));
        }
        let epoch = now_ms.div_euclid(epoch_ms);
        let epoch_ends_ms = epoch
            .checked_add(1)
            .and_then(|next| next.checked_mul(epoch_ms))
            .ok_or_else(|| {
                StoreError::InvalidArgument(format!("epoch {epoch} of {epoch_ms} ms overflows"))
            })?;
        let outcome = write_tx!(self, |tx, engine| {
            // On PostgreSQL the prover's row lock serializes its lease requests across
            // replicas; on SQLite `BEGIN IMMEDIATE` already serializes every writer.
            let select = format!(
                "SELECT rate_limit, max_concurrent FROM provers WHERE id = $1{}",
                engine.for_update()
            );
            let limits: Option<(i64, i64)> = sqlx::query_as(&select)
                .bind(prover)
                .fetch_optional(&mut *tx)
                .await?;
            let (rate_limit, max_concurrent) =
                limits.ok_or_else(|| StoreError::UnknownProver(prover.to_owned()))?;

            let active: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs \
                 WHERE lease_holder = $1 AND status = 'leased' AND lease_expires_ms > $2",
            )
            .bind(prover)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
            if active >= max_concurrent {
                return Ok(LeaseOutcome::TooManyLeases {
                    active,
                    limit: max_concurrent,
                });
            }

            let used: Option<i64> = sqlx::query_scalar(
                "SELECT count FROM lease_counts WHERE prover = $1 AND epoch = $2",
            )
            .bind(prover)
            .bind(epoch)
            .fetch_optional(&mut *tx)
            .await?;
            let used = used.unwrap_or(0);
            if used >= rate_limit {
                return Ok(LeaseOutcome::RateLimited {
                    used,
                    limit: rate_limit,
                    epoch_ends_ms,
                });
            }

            match claim_next_job!(tx, engine, prover, now_ms, expires_ms) {
                None => LeaseOutcome::NoWork,
                Some(lease) => {
                    sqlx::query(
                        "INSERT INTO lease_counts (prover, epoch, count) VALUES ($1, $2, 1) \
                         ON CONFLICT (prover, epoch) DO UPDATE SET count = lease_counts.count + 1",
                    )
                    .bind(prover)
                    .bind(epoch)
                    .execute(&mut *tx)
                    .await?;
                    // Past epochs are never read again: keep one row per prover.
                    sqlx::query("DELETE FROM lease_counts WHERE prover = $1 AND epoch < $2")
                        .bind(prover)
                        .bind(epoch)
                        .execute(&mut *tx)
                        .await?;
                    LeaseOutcome::Leased(lease)
                }
            }
        });
        match &outcome {
            LeaseOutcome::Leased(lease) => log_lease(lease),
            LeaseOutcome::NoWork => {}
            refused => {
                tracing::debug!(target: "sheaf::store", prover, outcome = ?refused, "lease refused")
            }
        }
        Ok(outcome)
    }

    /// Whether any job is ready. A read on the ready-jobs index, so a waiting lease request
    /// can look without taking the write lock.
    pub async fn has_ready_job(&self) -> Result<bool> {
        on_pool!(self, |pool| {
            Ok(sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'ready')",
            )
            .fetch_one(pool)
            .await?)
        })
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
        let updated = on_write_pool!(self, |pool| {
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

fn log_lease(lease: &Lease) {
    tracing::debug!(
        target: "sheaf::store",
        job = %lease.job,
        prover = %lease.holder,
        token = lease.token,
        attempt = lease.attempt,
        expires_ms = lease.expires_ms,
        "leased job"
    );
}
