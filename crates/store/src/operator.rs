//! Reads and operator actions: inspecting, requeueing and cancelling jobs, proofs, sequences,
//! rewards and metrics.

use std::collections::{BTreeMap, HashMap};

use sheaf_types::{JobId, SequenceId};

use crate::error::{Result, StoreError};
use crate::model::{
    Job, JobFilter, JobStatus, Prover, ProverActivity, Reward, Sequence, SequenceStatusCount,
    StatusCount,
};
use crate::rows::{ProverRow, RewardRow, JOB_COLUMNS, PROVER_COLUMNS};
use crate::store::WriteTx;
use crate::Store;

/// Columns selected for a [`Sequence`].
const SEQUENCE_COLUMNS: &str = "id, leaves, root_job, created_ms, proved_ms";

impl Store {
    /// The job with this id, or `None`.
    pub async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        let job: Option<Job> =
            sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
        let Some(mut job) = job else { return Ok(None) };
        job.children =
            sqlx::query_scalar("SELECT id FROM jobs WHERE parent = $1 ORDER BY position")
                .bind(id)
                .fetch_all(self.reader())
                .await?;
        Ok(Some(job))
    }

    /// Jobs matching `filter`, in tree order (sequence, level, index).
    pub async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<Job>> {
        const MATCHES: &str = "($1 IS NULL OR sequence = $1) AND ($2 IS NULL OR status = $2)";
        let status = filter.status.map(JobStatus::as_str);
        let mut jobs: Vec<Job> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE {MATCHES} ORDER BY sequence, level, idx"
        ))
        .bind(filter.sequence)
        .bind(status)
        .fetch_all(self.reader())
        .await?;
        // The children of the listed jobs, in one query rather than one per job.
        let edges: Vec<(JobId, JobId)> = sqlx::query_as(&format!(
            "SELECT parent, id FROM jobs WHERE parent IN (SELECT id FROM jobs WHERE {MATCHES}) \
             ORDER BY parent, position"
        ))
        .bind(filter.sequence)
        .bind(status)
        .fetch_all(self.reader())
        .await?;
        let mut children: HashMap<JobId, Vec<JobId>> = HashMap::new();
        for (parent, child) in edges {
            children.entry(parent).or_default().push(child);
        }
        for job in &mut jobs {
            job.children = children.remove(&job.id).unwrap_or_default();
        }
        Ok(jobs)
    }

    /// Puts a `dead`, `leased` or `cancelled` job back in line with a fresh retry budget: `ready`
    /// when its children are all proved, else `waiting`. Any lease on it becomes stale. Returns
    /// the new state; other states give [`StoreError::InvalidTransition`].
    pub async fn requeue_job(&self, job: JobId) -> Result<JobStatus> {
        let mut tx = self.begin_write().await?;
        let status = requeue(&mut tx, job).await;
        let status = tx.finish(status).await?;
        tracing::info!(target: "sheaf::store", %job, %status, "operator requeued job");
        Ok(status)
    }

    /// Requeues every job of `sequence` in state `status` as [`Store::requeue_job`] does, in one
    /// transaction: all of them or, on an error, none. Only `dead` and `cancelled` jobs are
    /// requeued by sequence (a lease is broken one job at a time, knowing whose it is); another
    /// state gives [`StoreError::InvalidArgument`], an unknown sequence
    /// [`StoreError::UnknownSequence`]. Returns the jobs requeued, in tree order, with their new
    /// states; none when no job is in that state.
    pub async fn requeue_sequence(
        &self,
        sequence: SequenceId,
        status: JobStatus,
    ) -> Result<Vec<(JobId, JobStatus)>> {
        if !matches!(status, JobStatus::Dead | JobStatus::Cancelled) {
            return Err(StoreError::InvalidArgument(format!(
                "only dead or cancelled jobs are requeued by sequence, not {status} ones"
            )));
        }
        let mut tx = self.begin_write().await?;
        let requeued = requeue_each(&mut tx, sequence, status).await;
        let requeued = tx.finish(requeued).await?;
        tracing::info!(target: "sheaf::store", %sequence, from = %status, jobs = requeued.len(), "operator requeued jobs of a sequence");
        Ok(requeued)
    }

    /// Withdraws a job that is not proved: it is never leased until requeued, and a lease on
    /// it becomes stale. Its ancestors wait for it. Cancelling a cancelled job does nothing; a
    /// proved job gives [`StoreError::InvalidTransition`].
    pub async fn cancel_job(&self, job: JobId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let cancelled = cancel(&mut tx, job).await;
        tx.finish(cancelled).await?;
        tracing::info!(target: "sheaf::store", %job, "operator cancelled job");
        Ok(())
    }

    /// The sequence with this id, or `None`.
    pub async fn get_sequence(&self, id: SequenceId) -> Result<Option<Sequence>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?)
    }

    /// Every sequence, by id.
    pub async fn list_sequences(&self) -> Result<Vec<Sequence>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences ORDER BY id"
        ))
        .fetch_all(self.reader())
        .await?)
    }

    /// The reward entries of a sequence, in tree order.
    pub async fn rewards(&self, sequence: SequenceId) -> Result<Vec<Reward>> {
        if self.get_sequence(sequence).await?.is_none() {
            return Err(StoreError::UnknownSequence(sequence));
        }
        let rows: Vec<RewardRow> = sqlx::query_as(
            "SELECT r.job, r.prover, r.worker_pk, r.work_units, r.created_ms \
             FROM rewards r JOIN jobs j ON j.id = r.job \
             WHERE r.sequence = $1 ORDER BY j.level, j.idx",
        )
        .bind(sequence)
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Reward::try_from).collect()
    }

    /// Number of jobs per state and level over all sequences, for metrics. Reads every job: no
    /// index covers the status of all jobs, since keeping one costs every lease and proof more
    /// than a scrape costs.
    pub async fn counts_by_status(&self) -> Result<Vec<StatusCount>> {
        Ok(sqlx::query_as(
            "SELECT status, level, COUNT(*) AS count FROM jobs GROUP BY status, level \
             ORDER BY level, status",
        )
        .fetch_all(self.reader())
        .await?)
    }

    /// Number of jobs per sequence and state, by sequence: what `sheaf status` shows.
    pub async fn counts_by_sequence(&self) -> Result<Vec<SequenceStatusCount>> {
        Ok(sqlx::query_as(
            "SELECT sequence, status, COUNT(*) AS count FROM jobs GROUP BY sequence, status \
             ORDER BY sequence, status",
        )
        .fetch_all(self.reader())
        .await?)
    }

    /// Every prover the store knows, by name: the registered ones and any name that holds a
    /// lease or earned a reward, with its unexpired leases at `now_ms`, its proved jobs and
    /// their work units.
    pub async fn prover_activity(&self, now_ms: i64) -> Result<Vec<ProverActivity>> {
        let registry: Vec<ProverRow> =
            sqlx::query_as(&format!("SELECT {PROVER_COLUMNS} FROM provers"))
                .fetch_all(self.reader())
                .await?;
        let proved: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT prover, COUNT(*), CAST(SUM(work_units) AS BIGINT), MAX(created_ms) \
             FROM rewards GROUP BY prover",
        )
        .fetch_all(self.reader())
        .await?;
        let leased: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT lease_holder, \
             CAST(SUM(CASE WHEN lease_expires_ms > $1 THEN 1 ELSE 0 END) AS BIGINT), \
             MAX(leased_ms) FROM jobs WHERE status = 'leased' GROUP BY lease_holder",
        )
        .bind(now_ms)
        .fetch_all(self.reader())
        .await?;
        let mut provers: BTreeMap<String, ProverActivity> = BTreeMap::new();
        for row in registry {
            let prover = Prover::try_from(row)?;
            let id = prover.id.clone();
            activity_of(&mut provers, id).registered = Some(prover);
        }
        for (id, jobs, units, last_proof_ms) in proved {
            let activity = activity_of(&mut provers, id);
            activity.jobs_proved = jobs;
            activity.work_units = units;
            activity.last_seen_ms = activity.last_seen_ms.max(Some(last_proof_ms));
        }
        for (id, live, last_lease_ms) in leased {
            let activity = activity_of(&mut provers, id);
            activity.live_leases = live;
            activity.last_seen_ms = activity.last_seen_ms.max(last_lease_ms);
        }
        let rejected: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT prover, reason, count, last_ms FROM rejections \
             ORDER BY prover, count DESC, reason",
        )
        .fetch_all(self.reader())
        .await?;
        for (id, reason, count, last_ms) in rejected {
            let activity = activity_of(&mut provers, id);
            activity.rejections.push((reason, count));
            activity.last_seen_ms = activity.last_seen_ms.max(Some(last_ms));
        }
        Ok(provers.into_values().collect())
    }

    /// Counts one submission by `prover` refused for `reason` (the API's error code) at
    /// `now_ms`, for [`Store::prover_activity`].
    pub async fn record_rejection(&self, prover: &str, reason: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO rejections (prover, reason, count, last_ms) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (prover, reason) \
             DO UPDATE SET count = rejections.count + 1, last_ms = excluded.last_ms",
        )
        .bind(prover)
        .bind(reason)
        .bind(now_ms)
        .execute(self.writer())
        .await?;
        self.changed();
        Ok(())
    }
}

/// The state of `job` in a write transaction, its row locked on PostgreSQL.
async fn locked_status(tx: &mut WriteTx, job: JobId) -> Result<JobStatus> {
    let select = format!(
        "SELECT status FROM jobs WHERE id = $1{}",
        tx.engine.for_update()
    );
    let status: Option<JobStatus> = sqlx::query_scalar(&select)
        .bind(job)
        .fetch_optional(tx.conn())
        .await?;
    status.ok_or(StoreError::UnknownJob(job))
}

/// The body of [`Store::requeue_job`], inside its write transaction.
async fn requeue(tx: &mut WriteTx, job: JobId) -> Result<JobStatus> {
    let from = locked_status(tx, job).await?;
    if !matches!(
        from,
        JobStatus::Dead | JobStatus::Leased | JobStatus::Cancelled
    ) {
        return Err(StoreError::InvalidTransition {
            job,
            from,
            action: "requeue",
        });
    }
    let unproved: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE parent = $1 AND status <> 'proved'")
            .bind(job)
            .fetch_one(tx.conn())
            .await?;
    let to = if unproved == 0 {
        JobStatus::Ready
    } else {
        JobStatus::Waiting
    };
    sqlx::query(
        "UPDATE jobs SET status = $2, attempts = 0, lease_holder = NULL, \
         lease_expires_ms = NULL WHERE id = $1",
    )
    .bind(job)
    .bind(to)
    .execute(tx.conn())
    .await?;
    // A fresh budget: the provers that abandoned it count no more.
    sqlx::query("DELETE FROM lease_abandons WHERE job = $1")
        .bind(job)
        .execute(tx.conn())
        .await?;
    Ok(to)
}

/// The entry of prover `id`, a new one with nothing counted if it has none yet.
fn activity_of(provers: &mut BTreeMap<String, ProverActivity>, id: String) -> &mut ProverActivity {
    provers.entry(id.clone()).or_insert_with(|| ProverActivity {
        id,
        registered: None,
        live_leases: 0,
        jobs_proved: 0,
        work_units: 0,
        last_seen_ms: None,
        rejections: Vec::new(),
    })
}

/// The body of [`Store::requeue_sequence`], inside its write transaction: [`requeue`] for each
/// job of `sequence` in state `status`.
async fn requeue_each(
    tx: &mut WriteTx,
    sequence: SequenceId,
    status: JobStatus,
) -> Result<Vec<(JobId, JobStatus)>> {
    let known: Option<SequenceId> = sqlx::query_scalar("SELECT id FROM sequences WHERE id = $1")
        .bind(sequence)
        .fetch_optional(tx.conn())
        .await?;
    if known.is_none() {
        return Err(StoreError::UnknownSequence(sequence));
    }
    let select = format!(
        "SELECT id FROM jobs WHERE sequence = $1 AND status = $2 ORDER BY level, idx{}",
        tx.engine.for_update()
    );
    let jobs: Vec<JobId> = sqlx::query_scalar(&select)
        .bind(sequence)
        .bind(status.as_str())
        .fetch_all(tx.conn())
        .await?;
    let mut requeued = Vec::with_capacity(jobs.len());
    for job in jobs {
        requeued.push((job, requeue(tx, job).await?));
    }
    Ok(requeued)
}

/// The body of [`Store::cancel_job`], inside its write transaction.
async fn cancel(tx: &mut WriteTx, job: JobId) -> Result<()> {
    let from = locked_status(tx, job).await?;
    if from == JobStatus::Proved {
        return Err(StoreError::InvalidTransition {
            job,
            from,
            action: "cancel",
        });
    }
    sqlx::query(
        "UPDATE jobs SET status = 'cancelled', lease_holder = NULL, \
         lease_expires_ms = NULL WHERE id = $1",
    )
    .bind(job)
    .execute(tx.conn())
    .await?;
    Ok(())
}
