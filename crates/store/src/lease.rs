//! Leases: handing jobs to provers, keeping them alive, taking them back.

use std::collections::BTreeSet;

use sheaf_types::{JobCircuit, JobId, JobInputs};

use crate::error::{Result, StoreError};
use crate::model::{AbandonBackoff, ExpiredLeases, JobStatus, Lease, LeaseOutcome};
use crate::rows::{sorted, ClaimRow};
use crate::store::{Engine, WriteTx};
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

/// Inside write transaction `tx`, leases the next `ready` job to `prover` until `expires_ms`,
/// granted at `now_ms`; returns the [`Lease`], or `None` when nothing is ready. Shared by every
/// way of leasing, so they all hand out jobs in the same order.
///
/// Critical path first: the lowest sequence (it settles first), then the highest level (it
/// unblocks the root soonest), then the lowest index. One statement picks and updates the row;
/// on PostgreSQL the pick skips rows that concurrent claimers hold.
///
/// The transaction is a lazy one ([`Store::begin_lazy_write`]): it commits without waiting
/// for its flush, saving one of the two fsyncs of a lease→submit cycle. A database or OS
/// crash can forget leases granted in the last moments, which is the same as those leases
/// expiring at once: the jobs are `ready` again, and a forgotten lease's submission is refused
/// as stale unless the same prover leased the job again. A submission commits durably, and its
/// flush makes every earlier commit durable too.
async fn claim_next_job(
    tx: &mut WriteTx,
    prover: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<Option<Lease>> {
    let row: Option<ClaimRow> = sqlx::query_as(&claim_sql(tx.engine))
        .bind(prover)
        .bind(expires_ms)
        .bind(now_ms)
        .fetch_optional(tx.conn())
        .await?;
    Ok(row.map(|row| row.into_lease(prover, expires_ms)))
}

/// The statement that leases the next ready job (`$1` the prover, `$2` the expiry, `$3` the
/// time) and returns a [`ClaimRow`]: see [`claim_next_job`].
pub(crate) fn claim_sql(engine: Engine) -> String {
    format!(
        "UPDATE jobs SET status = 'leased', attempts = attempts + 1, \
         lease_token = lease_token + 1, lease_holder = $1, lease_expires_ms = $2, \
         leased_ms = $3 \
         WHERE id = (SELECT id FROM jobs WHERE status = 'ready' \
         ORDER BY sequence, level DESC, idx LIMIT 1{}) \
         RETURNING id, attempts, lease_token, circuit, inputs",
        engine.claim()
    )
}

/// A prover's lease request and the epoch its rate is counted in, as
/// [`Store::lease_admitted`] takes it to either engine.
pub(crate) struct Admission {
    pub(crate) prover: String,
    pub(crate) now_ms: i64,
    pub(crate) expires_ms: i64,
    pub(crate) epoch: i64,
    pub(crate) epoch_ends_ms: i64,
}

/// What [`Store::lease_admitted`] reads of a prover before it leases: its limits, its back-off, its
/// unexpired leases and the leases it was granted in the current epoch.
pub(crate) struct Standing {
    pub(crate) rate_limit: i64,
    pub(crate) max_concurrent: i64,
    pub(crate) abandoned_in_row: Option<i64>,
    pub(crate) suspended_until_ms: Option<i64>,
    pub(crate) active: i64,
    pub(crate) used: Option<i64>,
}

impl Standing {
    /// Why the prover may not lease now, in the order [`Store::lease_admitted`] documents, or
    /// `None` when its limits admit one more lease.
    pub(crate) fn refusal(&self, a: &Admission) -> Option<LeaseOutcome> {
        if let (Some(abandoned), Some(until_ms)) = (self.abandoned_in_row, self.suspended_until_ms)
        {
            if a.now_ms < until_ms {
                return Some(LeaseOutcome::Suspended {
                    abandoned,
                    until_ms,
                });
            }
        }
        if self.active >= self.max_concurrent {
            return Some(LeaseOutcome::TooManyLeases {
                active: self.active,
                limit: self.max_concurrent,
            });
        }
        let used = self.used.unwrap_or(0);
        if used >= self.rate_limit {
            return Some(LeaseOutcome::RateLimited {
                used,
                limit: self.rate_limit,
                epoch_ends_ms: a.epoch_ends_ms,
            });
        }
        None
    }
}

/// A prover's [`Standing`] (`$1` the prover, `$2` the time, `$3` the epoch), in one statement:
/// each statement is a round trip to the store's connection, and a lease is on every cycle's
/// path.
pub(crate) const STANDING: &str = "SELECT p.rate_limit, p.max_concurrent, \
     b.abandoned_in_row, b.suspended_until_ms, \
     (SELECT COUNT(*) FROM jobs WHERE lease_holder = $1 AND status = 'leased' \
      AND lease_expires_ms > $2) AS active, \
     (SELECT count FROM lease_counts WHERE prover = $1 AND epoch = $3) AS used \
     FROM provers p LEFT JOIN prover_backoff b ON b.prover = p.id WHERE p.id = $1";

/// What PostgreSQL's `sheaf_lease` (migration 0014) answers: the prover's [`Standing`], with
/// NULL limits when it is not registered, and the job it leased, if any.
#[derive(sqlx::FromRow)]
struct PgLeaseRow {
    rate_limit: Option<i64>,
    max_concurrent: Option<i64>,
    abandoned_in_row: Option<i64>,
    suspended_until_ms: Option<i64>,
    active: Option<i64>,
    used: Option<i64>,
    id: Option<JobId>,
    attempts: Option<i64>,
    lease_token: Option<i64>,
    circuit: Option<JobCircuit>,
    inputs: Option<JobInputs>,
}

/// [`Store::lease_admitted`] on PostgreSQL: one call of `sheaf_lease`, which runs this
/// module's statements in the server, in a transaction of its own that commits without
/// waiting for the WAL flush (see [`claim_next_job`]). It locks the prover's row first, which
/// serializes the prover's requests across replicas, and reads the counts after the lock.
async fn lease_on_postgres(store: &Store, a: &Admission) -> Result<LeaseOutcome> {
    let row: PgLeaseRow = sqlx::query_as("SELECT * FROM sheaf_lease($1, $2, $3, $4)")
        .bind(&a.prover)
        .bind(a.now_ms)
        .bind(a.expires_ms)
        .bind(a.epoch)
        .fetch_one(store.writer())
        .await?;
    let (Some(rate_limit), Some(max_concurrent), Some(active)) =
        (row.rate_limit, row.max_concurrent, row.active)
    else {
        return Err(StoreError::UnknownProver(a.prover.clone()));
    };
    let standing = Standing {
        rate_limit,
        max_concurrent,
        abandoned_in_row: row.abandoned_in_row,
        suspended_until_ms: row.suspended_until_ms,
        active,
        used: row.used,
    };
    let claimed = (
        row.id,
        row.attempts,
        row.lease_token,
        row.circuit,
        row.inputs,
    );
    match (standing.refusal(a), claimed) {
        (Some(refusal), (None, ..)) => Ok(refusal),
        (None, (None, ..)) => Ok(LeaseOutcome::NoWork),
        (None, (Some(id), Some(attempts), Some(lease_token), Some(circuit), Some(inputs))) => {
            Ok(LeaseOutcome::Leased(
                ClaimRow {
                    id,
                    attempts,
                    lease_token,
                    circuit,
                    inputs,
                }
                .into_lease(&a.prover, a.expires_ms),
            ))
        }
        (refusal, _) => Err(StoreError::Corrupt(format!(
            "sheaf_lease answered a lease the standing refuses ({refusal:?}) or a partial one"
        ))),
    }
}

/// Counts a lease in its prover's (`$1`) epoch (`$2`).
pub(crate) const COUNT_LEASE: &str = "INSERT INTO lease_counts (prover, epoch, count) \
     VALUES ($1, $2, 1) \
     ON CONFLICT (prover, epoch) DO UPDATE SET count = lease_counts.count + 1";

/// Deletes a prover's (`$1`) counts of epochs before `$2`, on the first lease of an epoch: past
/// epochs are never read again, so one row per prover is kept (later leases of the epoch find
/// them gone already).
pub(crate) const FORGET_PAST_EPOCHS: &str =
    "DELETE FROM lease_counts WHERE prover = $1 AND epoch < $2";

/// The unexpired leases of a prover (`$1`) at `$2`.
const COUNT_ACTIVE_LEASES: &str = "SELECT COUNT(*) FROM jobs \
     WHERE lease_holder = $1 AND status = 'leased' AND lease_expires_ms > $2";

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
        let mut tx = self.begin_lazy_write().await?;
        let lease = claim_next_job(&mut tx, prover, now_ms, expires_ms).await;
        if matches!(lease, Ok(None)) {
            tx.unchanged();
        }
        let lease = tx.finish(lease).await?;
        if let Some(lease) = &lease {
            log_lease(lease);
        }
        Ok(lease)
    }

    /// Leases the next `ready` job to a registered `prover`, as [`Store::lease_next_job`] does,
    /// if its limits admit one more lease; all in one transaction, so concurrent requests (and
    /// coordinator replicas) cannot both pass a limit with one slot left.
    ///
    /// In order: a prover that is not registered is [`StoreError::UnknownProver`]; one serving
    /// the back-off of its abandoned leases gets [`LeaseOutcome::Suspended`] (see
    /// [`Store::requeue_expired_with_backoff`]); one holding
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
        let admission = Admission {
            prover: prover.to_owned(),
            now_ms,
            expires_ms,
            epoch,
            epoch_ends_ms,
        };
        let outcome = match &self.db.group {
            Some(group) => {
                let outcome = group.lease(admission).await?;
                if matches!(outcome, LeaseOutcome::Leased(_)) {
                    self.changed();
                }
                outcome
            }
            None => {
                fail::fail_point!("store::lease::before_commit");
                let outcome = lease_on_postgres(self, &admission).await?;
                fail::fail_point!("store::lease::after_commit");
                if matches!(outcome, LeaseOutcome::Leased(_)) {
                    self.changed();
                }
                outcome
            }
        };
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
        // No EXISTS: PostgreSQL answers a boolean, SQLite an integer.
        let ready: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM jobs WHERE status = 'ready' LIMIT 1")
                .fetch_optional(self.reader())
                .await?;
        Ok(ready.is_some())
    }

    /// Leases `prover` holds that have not expired at `now_ms`, to enforce its concurrency cap.
    pub async fn count_active_leases(&self, prover: &str, now_ms: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(COUNT_ACTIVE_LEASES)
            .bind(prover)
            .bind(now_ms)
            .fetch_one(self.reader())
            .await?)
    }

    /// Extends a current lease to `now_ms + ttl_ms` and returns the new expiry.
    ///
    /// A lease is current while the job is `leased` under this token and `now_ms` is before its
    /// expiry; otherwise [`StoreError::StaleLease`] (an expired lease cannot be revived, since
    /// the job may already be with another prover).
    pub async fn heartbeat(&self, job: JobId, token: i64, now_ms: i64, ttl_ms: i64) -> Result<i64> {
        let expires_ms = expiry(now_ms, ttl_ms)?;
        let updated = sqlx::query(
            "UPDATE jobs SET lease_expires_ms = $4 \
             WHERE id = $1 AND status = 'leased' AND lease_token = $2 \
             AND lease_expires_ms > $3",
        )
        .bind(job)
        .bind(token)
        .bind(now_ms)
        .bind(expires_ms)
        .execute(self.writer())
        .await?
        .rows_affected();
        if updated == 0 {
            // Tell an unknown id from a stale lease; a read after the failed update is enough,
            // since either way nothing changed.
            self.status_of(job).await?;
            return Err(StoreError::StaleLease { job, token });
        }
        Ok(expires_ms)
    }

    /// The provers that let a lease on `job` expire, once each, in name order: what
    /// `max_attempts` counts.
    pub async fn abandoners(&self, job: JobId) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT prover FROM lease_abandons WHERE job = $1 ORDER BY prover")
            .bind(job)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|row| Ok(sqlx::Row::try_get::<String, _>(row, "prover")?))
            .collect()
    }

    /// Moves the expiry of every lease that ends before `until_ms` to `until_ms`, leaving
    /// tokens and holders as they are; returns how many. A coordinator calls it when it starts,
    /// so that leases its downtime let run out can still be renewed by their provers.
    pub async fn extend_leases(&self, until_ms: i64) -> Result<u64> {
        let extended = sqlx::query(
            "UPDATE jobs SET lease_expires_ms = $1 \
             WHERE status = 'leased' AND lease_expires_ms < $1",
        )
        .bind(until_ms)
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(extended)
    }

    /// Takes back every lease expired at `now_ms` (expiry ≤ now), as
    /// [`Store::requeue_expired_with_backoff`] does, without suspending anyone.
    pub async fn requeue_expired(&self, now_ms: i64, max_attempts: i64) -> Result<ExpiredLeases> {
        self.requeue_expired_with_backoff(now_ms, max_attempts, AbandonBackoff::NONE)
            .await
    }

    /// Takes back every lease expired at `now_ms` (expiry ≤ now). Its holder is recorded as an
    /// abandoner of the job, once per (job, prover); the job goes back to `ready`, or to `dead`
    /// once `max_attempts` distinct provers abandoned it. So one prover leasing a job and
    /// walking away, however often, cannot kill it, while a job that crashes every prover
    /// still dies.
    ///
    /// The abandoning prover pays instead: each sweep that takes a lease back from it counts
    /// one more abandonment in a row (an accepted proof resets the count), and it may not lease
    /// again for `backoff.suspension_ms(count)` from `now_ms` ([`LeaseOutcome::Suspended`]).
    pub async fn requeue_expired_with_backoff(
        &self,
        now_ms: i64,
        max_attempts: i64,
        backoff: AbandonBackoff,
    ) -> Result<ExpiredLeases> {
        if max_attempts < 1 {
            return Err(StoreError::InvalidArgument(format!(
                "max_attempts must be at least 1, got {max_attempts}"
            )));
        }
        if backoff.base_ms < 0 || backoff.max_ms < 0 {
            return Err(StoreError::InvalidArgument(format!(
                "abandon back-off must not be negative, got {backoff:?}"
            )));
        }
        let mut tx = self.begin_write().await?;
        let expired = take_back_expired(&mut tx, now_ms, max_attempts, backoff).await;
        if matches!(&expired, Ok(e) if e.requeued.is_empty() && e.dead.is_empty()) {
            tx.unchanged();
        }
        fail::fail_point!("store::requeue::before_commit");
        let expired = tx.finish(expired).await?;
        fail::fail_point!("store::requeue::after_commit");
        for job in &expired.requeued {
            tracing::info!(target: "sheaf::store", %job, "lease expired, job requeued");
        }
        for job in &expired.dead {
            tracing::warn!(target: "sheaf::store", %job, max_attempts, "abandoned by max_attempts distinct provers, job dead");
        }
        Ok(expired)
    }

    /// State of a job, or [`StoreError::UnknownJob`].
    pub(crate) async fn status_of(&self, job: JobId) -> Result<JobStatus> {
        let status: Option<JobStatus> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_optional(self.reader())
            .await?;
        status.ok_or(StoreError::UnknownJob(job))
    }
}

/// The body of [`Store::requeue_expired_with_backoff`], inside its write transaction.
async fn take_back_expired(
    tx: &mut WriteTx,
    now_ms: i64,
    max_attempts: i64,
    backoff: AbandonBackoff,
) -> Result<ExpiredLeases> {
    let select = format!(
        "SELECT id, lease_holder FROM jobs WHERE status = 'leased' AND lease_expires_ms <= $1 \
         ORDER BY id{}",
        tx.engine.for_update()
    );
    let expired: Vec<(JobId, Option<String>)> = sqlx::query_as(&select)
        .bind(now_ms)
        .fetch_all(tx.conn())
        .await?;
    let mut taken_back = ExpiredLeases::default();
    let mut abandoners = BTreeSet::new();
    for (job, holder) in expired {
        if let Some(holder) = holder {
            sqlx::query(
                "INSERT INTO lease_abandons (job, prover, abandoned_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (job, prover) DO UPDATE SET abandoned_ms = excluded.abandoned_ms",
            )
            .bind(job)
            .bind(&holder)
            .bind(now_ms)
            .execute(tx.conn())
            .await?;
            abandoners.insert(holder);
        }
        let distinct: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM lease_abandons WHERE job = $1")
                .bind(job)
                .fetch_one(tx.conn())
                .await?;
        let to = if distinct >= max_attempts {
            taken_back.dead.push(job);
            JobStatus::Dead
        } else {
            taken_back.requeued.push(job);
            JobStatus::Ready
        };
        sqlx::query(
            "UPDATE jobs SET status = $2, lease_holder = NULL, lease_expires_ms = NULL \
             WHERE id = $1",
        )
        .bind(job)
        .bind(to)
        .execute(tx.conn())
        .await?;
    }
    for prover in abandoners {
        let in_row: i64 = sqlx::query_scalar(
            "INSERT INTO prover_backoff (prover, abandoned_in_row, suspended_until_ms) \
             VALUES ($1, 1, 0) ON CONFLICT (prover) DO UPDATE \
             SET abandoned_in_row = prover_backoff.abandoned_in_row + 1 \
             RETURNING abandoned_in_row",
        )
        .bind(&prover)
        .fetch_one(tx.conn())
        .await?;
        let until_ms = now_ms.saturating_add(backoff.suspension_ms(in_row));
        sqlx::query("UPDATE prover_backoff SET suspended_until_ms = $2 WHERE prover = $1")
            .bind(&prover)
            .bind(until_ms)
            .execute(tx.conn())
            .await?;
        if until_ms > now_ms {
            tracing::warn!(target: "sheaf::store", %prover, abandoned_in_row = in_row, until_ms, "prover let leases expire, suspended");
        }
    }
    taken_back.requeued = sorted(taken_back.requeued);
    taken_back.dead = sorted(taken_back.dead);
    Ok(taken_back)
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
