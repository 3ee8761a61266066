//! Reads for the coordinator's live console (`/ui`): the newest sequences with their blocks and
//! settlement marks, job counts per level, the light columns of a tree's jobs (no inputs, no
//! proofs), and the outbox's steps without their signed bytes. One publisher calls them at
//! most a few times a second, whatever the number of viewers.

use sheaf_types::{JobCircuit, JobId, SequenceId};

use crate::error::Result;
use crate::model::JobStatus;
use crate::outbox::{OutboxKind, OutboxStatus};
use crate::Store;

/// A sequence as the console lists it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleSequence {
    /// Sequence number.
    pub id: SequenceId,
    /// Leaves of its workload.
    pub leaves: i64,
    /// Its root job.
    pub root_job: JobId,
    /// When it was planned (ms).
    pub created_ms: i64,
    /// When its root was proved (ms).
    pub proved_ms: Option<i64>,
    /// When the proof sender saw the chain finalize it (ms).
    pub settled_ms: Option<i64>,
    /// The rollup block it proves, if it proves one.
    pub block: Option<i64>,
    /// That block's transactions.
    pub tx_count: Option<i64>,
}

/// Jobs of one sequence in one state at one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LevelCount {
    /// The sequence.
    pub sequence: SequenceId,
    /// The level (0: leaves).
    #[sqlx(try_from = "i64")]
    pub level: u32,
    /// The state.
    pub status: JobStatus,
    /// How many.
    pub count: i64,
}

/// A job's columns the console shows: no inputs, no proof.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleJob {
    /// Its place in the tree.
    pub id: JobId,
    /// Its circuit.
    pub circuit: JobCircuit,
    /// Its state.
    pub status: JobStatus,
    /// Leases counted against its retry budget.
    pub attempts: i64,
    /// Leases ever granted on it.
    pub lease_token: i64,
    /// The prover holding it, while leased.
    pub lease_holder: Option<String>,
    /// When that lease expires (ms).
    pub lease_expires_ms: Option<i64>,
    /// The prover whose proof is stored.
    pub proved_by: Option<String>,
    /// When its proof was stored (ms).
    pub proved_ms: Option<i64>,
    /// When its latest lease was granted (ms).
    pub leased_ms: Option<i64>,
    /// Proving time the prover reported (ms).
    pub prove_ms: Option<i64>,
}

/// A step of the proof sender, without its signed bytes.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxStep {
    /// The sequence it settles.
    pub sequence: SequenceId,
    /// Registration, hash or reveal.
    pub kind: OutboxKind,
    /// The settlement window it is for.
    pub attempt: i64,
    /// Its transaction hash.
    pub tx_hash: String,
    /// Where it stands.
    pub status: OutboxStatus,
    /// When it was stored (ms).
    pub created_ms: i64,
    /// The block it is in.
    pub included_height: Option<i64>,
}

/// The published, proven and settled tips: the highest sequence planned, and the highest such
/// that it and every sequence before it is proved (settled).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SequenceTips {
    /// The highest sequence planned.
    pub published: Option<SequenceId>,
    /// Every sequence up to it is proved.
    pub proven: Option<SequenceId>,
    /// Every sequence up to it is settled.
    pub settled: Option<SequenceId>,
}

const LIGHT_JOB_COLUMNS: &str = "id, circuit, status, attempts, lease_token, lease_holder, \
     lease_expires_ms, proved_by, proved_ms, leased_ms, prove_ms";

impl Store {
    /// The newest `limit` sequences, newest first, with their rollup block when they prove one.
    pub async fn console_sequences(&self, limit: u32) -> Result<Vec<ConsoleSequence>> {
        Ok(sqlx::query_as(
            "SELECT s.id, s.leaves, s.root_job, s.created_ms, s.proved_ms, s.settled_ms, \
             b.number AS block, b.tx_count \
             FROM sequences s LEFT JOIN rollup_blocks b ON b.sequence = s.id \
             ORDER BY s.id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    /// The published, proven and settled tips over every sequence.
    pub async fn sequence_tips(&self) -> Result<SequenceTips> {
        // -1 stands for "none": aggregates of no row are NULL, which the `Any` driver types
        // apart from integers.
        let (first, last, unproved, unsettled): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT COALESCE(MIN(id), -1), COALESCE(MAX(id), -1), \
             COALESCE(MIN(CASE WHEN proved_ms IS NULL THEN id END), -1), \
             COALESCE(MIN(CASE WHEN settled_ms IS NULL THEN id END), -1) FROM sequences",
        )
        .fetch_one(self.reader())
        .await?;
        let id = |n: i64| u64::try_from(n).ok().map(SequenceId);
        // The tip below the first sequence not done: the last one if none is left, none if the
        // first one is not done.
        let below = |gap: i64| {
            if gap < 0 {
                id(last)
            } else if gap > first {
                id(gap - 1)
            } else {
                None
            }
        };
        Ok(SequenceTips {
            published: id(last),
            proven: below(unproved),
            settled: below(unsettled),
        })
    }

    /// Jobs per sequence, level and state, of the sequences from `from` on.
    pub async fn level_counts(&self, from: SequenceId) -> Result<Vec<LevelCount>> {
        Ok(sqlx::query_as(
            "SELECT sequence, level, status, COUNT(*) AS count FROM jobs WHERE sequence >= $1 \
             GROUP BY sequence, level, status ORDER BY sequence, level",
        )
        .bind(from)
        .fetch_all(self.reader())
        .await?)
    }

    /// Every job of `sequence`, in tree order (level, then index), without inputs or proof.
    pub async fn console_jobs(&self, sequence: SequenceId) -> Result<Vec<ConsoleJob>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {LIGHT_JOB_COLUMNS} FROM jobs WHERE sequence = $1 ORDER BY level, idx"
        ))
        .bind(sequence)
        .fetch_all(self.reader())
        .await?)
    }

    /// A page of the jobs of `sequence` at `level`, by index from `offset`, at most `limit`.
    pub async fn console_level(
        &self,
        sequence: SequenceId,
        level: u32,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<ConsoleJob>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {LIGHT_JOB_COLUMNS} FROM jobs WHERE sequence = $1 AND level = $2 AND idx >= $3 \
             ORDER BY idx LIMIT $4"
        ))
        .bind(sequence)
        .bind(i64::from(level))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?)
    }

    /// The proof sender's steps for the sequences from `from` on, in the order stored, without
    /// their signed bytes.
    pub async fn outbox_steps(&self, from: SequenceId) -> Result<Vec<OutboxStep>> {
        Ok(sqlx::query_as(
            "SELECT sequence, kind, attempt, tx_hash, status, created_ms, included_height \
             FROM chain_outbox WHERE sequence >= $1 ORDER BY id",
        )
        .bind(from)
        .fetch_all(self.reader())
        .await?)
    }
}

impl Store {
    /// Work units each prover earned in sequences the proof sender saw settled: what the chain
    /// owes it (at the contract's reward per unit), claimed or not.
    pub async fn settled_units_by_prover(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT r.prover, CAST(SUM(r.work_units) AS BIGINT) FROM rewards r \
             JOIN sequences s ON s.id = r.sequence WHERE s.settled_ms IS NOT NULL \
             GROUP BY r.prover ORDER BY r.prover",
        )
        .fetch_all(self.reader())
        .await?)
    }
}
