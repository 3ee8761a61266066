//! Reads and operator actions: inspecting, requeueing and cancelling jobs, proofs, sequences,
//! rewards and metrics.

use std::collections::HashMap;

use crate::error::{Result, StoreError};
use crate::model::{Job, JobFilter, JobId, JobStatus, Reward, Sequence, StatusCount, StoredProofs};
use crate::rows::{job_from_row, key32, parse_stored_id, parse_stored_status, JobRow, JOB_COLUMNS};
use crate::Store;

impl Store {
    /// The job with this id, or `None`.
    pub async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        let key = id.to_string();
        let (row, children): (Option<JobRow>, Vec<String>) = on_pool!(self, |pool| {
            let row = sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                .bind(&key)
                .fetch_optional(pool)
                .await?;
            let children =
                sqlx::query_scalar("SELECT id FROM jobs WHERE parent = $1 ORDER BY position")
                    .bind(&key)
                    .fetch_all(pool)
                    .await?;
            (row, children)
        });
        let Some(row) = row else { return Ok(None) };
        let children = children
            .iter()
            .map(|child| parse_stored_id(child))
            .collect::<Result<_>>()?;
        job_from_row(row, children).map(Some)
    }

    /// Jobs matching `filter`, in tree order (sequence, level, index).
    pub async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<Job>> {
        const MATCHES: &str = "($1 IS NULL OR sequence = $1) AND ($2 IS NULL OR status = $2)";
        let status = filter.status.map(JobStatus::as_str);
        let (rows, edges): (Vec<JobRow>, Vec<(String, String)>) = on_pool!(self, |pool| {
            let rows = sqlx::query_as(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE {MATCHES} ORDER BY sequence, level, idx"
            ))
            .bind(filter.sequence)
            .bind(status)
            .fetch_all(pool)
            .await?;
            // The children of the listed jobs, in one query rather than one per job.
            let edges = sqlx::query_as(&format!(
                "SELECT parent, id FROM jobs WHERE parent IN (SELECT id FROM jobs WHERE {MATCHES}) \
                 ORDER BY parent, position"
            ))
            .bind(filter.sequence)
            .bind(status)
            .fetch_all(pool)
            .await?;
            (rows, edges)
        });
        let mut children: HashMap<String, Vec<JobId>> = HashMap::new();
        for (parent, child) in edges {
            children
                .entry(parent)
                .or_default()
                .push(parse_stored_id(&child)?);
        }
        rows.into_iter()
            .map(|row| {
                let kids = children.remove(&row.0).unwrap_or_default();
                job_from_row(row, kids)
            })
            .collect()
    }

    /// Puts a `dead`, `leased` or `cancelled` job back in line with a fresh retry budget: `ready`
    /// when its children are all proved, else `waiting`. Any lease on it becomes stale. Returns
    /// the new state; other states give [`StoreError::InvalidTransition`].
    pub async fn requeue_job(&self, job: JobId) -> Result<JobStatus> {
        let id = job.to_string();
        let status = write_tx!(self, |tx, engine| {
            let select = format!(
                "SELECT status FROM jobs WHERE id = $1{}",
                engine.for_update()
            );
            let status: Option<String> = sqlx::query_scalar(&select)
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
            let from = parse_stored_status(&status.ok_or(StoreError::UnknownJob(job))?)?;
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
            let unproved: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE parent = $1 AND status <> 'proved'",
            )
            .bind(&id)
            .fetch_one(&mut *tx)
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
            .bind(&id)
            .bind(to.as_str())
            .execute(&mut *tx)
            .await?;
            to
        });
        tracing::info!(target: "sheaf::store", %job, %status, "operator requeued job");
        Ok(status)
    }

    /// Withdraws a job that is not proved: it is never leased until requeued, and a lease on
    /// it becomes stale. Its ancestors wait for it. Cancelling a cancelled job does nothing; a
    /// proved job gives [`StoreError::InvalidTransition`].
    pub async fn cancel_job(&self, job: JobId) -> Result<()> {
        let id = job.to_string();
        write_tx!(self, |tx, engine| {
            let select = format!(
                "SELECT status FROM jobs WHERE id = $1{}",
                engine.for_update()
            );
            let status: Option<String> = sqlx::query_scalar(&select)
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
            let from = parse_stored_status(&status.ok_or(StoreError::UnknownJob(job))?)?;
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
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        });
        tracing::info!(target: "sheaf::store", %job, "operator cancelled job");
        Ok(())
    }

    /// The proof of a job, `None` while it is not proved.
    pub async fn proof_of(&self, job: JobId) -> Result<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>,)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT p.bytes FROM jobs j LEFT JOIN proofs p ON p.hash = j.proof_hash \
                 WHERE j.id = $1",
            )
            .bind(job.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.ok_or(StoreError::UnknownJob(job))?.0)
    }

    /// The proofs of a job's children, in child order: what its prover aggregates. A child
    /// without a proof gives [`StoreError::NotProved`]; a leaf gives an empty list.
    pub async fn child_proofs(&self, job: JobId) -> Result<Vec<(JobId, Vec<u8>)>> {
        self.status_of(job).await?;
        let rows: Vec<(String, Option<Vec<u8>>)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT c.id, p.bytes FROM jobs c LEFT JOIN proofs p ON p.hash = c.proof_hash \
                 WHERE c.parent = $1 ORDER BY c.position",
            )
            .bind(job.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(child, bytes)| {
                let child = parse_stored_id(&child)?;
                Ok((child, bytes.ok_or(StoreError::NotProved(child))?))
            })
            .collect()
    }

    /// The sequence with this id, or `None`.
    pub async fn get_sequence(&self, id: i64) -> Result<Option<Sequence>> {
        let row: Option<SequenceRow> = on_pool!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {SEQUENCE_COLUMNS} FROM sequences WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        row.map(sequence_from_row).transpose()
    }

    /// Every sequence, by id.
    pub async fn list_sequences(&self) -> Result<Vec<Sequence>> {
        let rows: Vec<SequenceRow> = on_pool!(self, |pool| {
            sqlx::query_as(&format!(
                "SELECT {SEQUENCE_COLUMNS} FROM sequences ORDER BY id"
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(sequence_from_row).collect()
    }

    /// The reward entries of a sequence, in tree order.
    pub async fn rewards(&self, sequence: i64) -> Result<Vec<Reward>> {
        if self.get_sequence(sequence).await?.is_none() {
            return Err(StoreError::UnknownSequence(sequence));
        }
        let rows: Vec<(String, String, Vec<u8>, i64, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT r.job, r.prover, r.worker_pk, r.work_units, r.created_ms \
                 FROM rewards r JOIN jobs j ON j.id = r.job \
                 WHERE r.sequence = $1 ORDER BY j.level, j.idx",
            )
            .bind(sequence)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(job, prover, worker_pk, work_units, created_ms)| {
                Ok(Reward {
                    job: parse_stored_id(&job)?,
                    prover,
                    worker_pk: key32(worker_pk, "reward worker_pk")?,
                    work_units,
                    created_ms,
                })
            })
            .collect()
    }

    /// Number of jobs per state and level over all sequences, for metrics. Reads every job: no
    /// index covers the status of all jobs, since keeping one costs every lease and proof more
    /// than a scrape costs.
    pub async fn counts_by_status(&self) -> Result<Vec<StatusCount>> {
        let rows: Vec<(String, i32, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT status, level, COUNT(*) FROM jobs GROUP BY status, level \
                 ORDER BY level, status",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(status, level, count)| {
                Ok(StatusCount {
                    status: parse_stored_status(&status)?,
                    level,
                    count,
                })
            })
            .collect()
    }

    /// Number and total size of stored proof blobs.
    pub async fn stored_proofs(&self) -> Result<StoredProofs> {
        let (count, bytes): (i64, Option<i64>) = on_pool!(self, |pool| {
            sqlx::query_as("SELECT COUNT(*), CAST(SUM(LENGTH(bytes)) AS BIGINT) FROM proofs")
                .fetch_one(pool)
                .await?
        });
        Ok(StoredProofs {
            count,
            bytes: bytes.unwrap_or(0),
        })
    }
}

/// Columns selected for a [`Sequence`], in the order of [`SequenceRow`].
const SEQUENCE_COLUMNS: &str = "id, leaves, root_job, created_ms, proved_ms";

/// A row of [`SEQUENCE_COLUMNS`].
type SequenceRow = (i64, i64, String, i64, Option<i64>);

fn sequence_from_row((id, leaves, root, created_ms, proved_ms): SequenceRow) -> Result<Sequence> {
    Ok(Sequence {
        id,
        leaves,
        root: parse_stored_id(&root)?,
        created_ms,
        proved_ms,
    })
}
